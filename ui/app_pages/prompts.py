"""Prompts: is the new version of a prompt better than the one it replaces? A verdict and its reasons.

One prompt is judged live (about a second on a big lake); all prompts at once come from the last
``spanlake analyze``, or live on request.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from spanlake.analytics.prompts import default_arms
from spanlake.ui import components as ui
from spanlake.ui import data
from spanlake.ui.sidebar import current_scope

LEVEL = {"promote": "ok", "keep watching": "warn", "roll back": "bad"}
scope = current_scope()


def show_verdicts(frame: pd.DataFrame) -> None:
    for row in frame.to_dict("records"):
        p = ui.plain
        reasons = "".join(f"\n- {p(r)}" for r in str(row["reasons"]).split("; "))
        ui.badge(f"**{p(row['prompt_name'])}**: {p(row['candidate'])} against {p(row['control'])} → "
                 f"**{p(row['verdict'])}**{reasons}", LEVEL.get(row["verdict"], "warn"))


def comparison(versions: pd.DataFrame) -> None:
    """Pick a prompt and two versions (default: newest against busiest other) and judge them now."""
    cols = st.columns(3)
    names = list(versions.groupby("prompt_name")["calls"].sum().sort_values(ascending=False).index)
    name = cols[0].selectbox("Prompt", names, key="prompt_name")
    mine = versions[versions["prompt_name"] == name]
    available = list(mine["prompt_version"])
    arms = default_arms(mine)
    if arms is None:
        ui.empty(f"{ui.plain(name)} has a single version in this window.")
        return
    candidate = cols[1].selectbox("Candidate", available, index=available.index(arms[0]), key="prompt_candidate")
    control = cols[2].selectbox("Control", available, index=available.index(arms[1]), key="prompt_control")
    if control == candidate:
        ui.empty("Pick two different versions.")
        return
    verdict = data.compare_versions(scope, name, candidate, control)
    show_verdicts(pd.DataFrame([{"prompt_name": name, "candidate": candidate, "control": control,
                                 "verdict": verdict.verdict, "reasons": "; ".join(verdict.reasons)}]))
    ui.table(verdict.metrics, ["metric", "judgement", "control", "candidate", "change", "p_value", "n_control",
                               "n_candidate"], column_config={"change": ui.PERCENT})
    ui.table(mine, ["prompt_version", "calls", "first_seen", "last_seen"])


def all_prompts() -> None:
    st.subheader("All prompts")
    if st.toggle("Judge every prompt now (about a second per prompt on a big lake)", key="judge_all"):
        show_verdicts(data.prompt_verdicts(scope))
        return
    stored, runs = data.stored_result(scope.lake_dir, "prompt_verdicts"), data.stored_result(scope.lake_dir, "runs")
    if stored is None or stored.empty:
        ui.empty("No verdicts stored: `spanlake analyze` stores them, or judge every prompt now.")
        return
    if runs is not None and len(runs):
        run = runs.iloc[0]
        st.caption(f"From the last analyze, {run['window_start']:%Y-%m-%d %H:%M} .. {run['window_end']:%H:%M} UTC.")
    show_verdicts(stored)


st.title("Prompts")
st.caption("Candidate = the newest version; control = the busiest other one. Output length is shown, "
           "never gating: longer is not worse by itself.")
live = data.prompt_versions(scope)
if live.empty:
    ui.empty("No calls carry a prompt name and version in this window.")
else:
    comparison(live)
all_prompts()
