"""Prompt versions: a candidate version (or canary) against its control, live, with a verdict.

Continuous metrics (latency, TTFT, cost per request, output length, evaluation scores) use the
Mann–Whitney test; rates (errors, refusals, positive feedback) the two-proportion z-test. The
verdict: **roll back** when any gating metric is significantly worse by a material margin;
**keep watching** while any arm has fewer than ``min_n`` calls; otherwise **promote**.
Output length is reported but never gates: longer is not worse by itself.

A version that *replaced* its predecessor (v1 until Tuesday, v2 after) has no control running next to
it: it gets a before/after verdict, the same metrics of the candidate since the change against the
control's 7 days before it, with ``design = "sequential"`` and its reasons saying it is not randomised.
Versions live side by side are ``design = "concurrent"``. A change that started before the window and
still runs is judged too (see :mod:`streams`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from spanlake.analytics import stats
from spanlake.analytics.drift import eval_scores
from spanlake.analytics.errors import refusal
from spanlake.analytics.lake import Lake, as_lake, to_frame
from spanlake.analytics.latency import time_bucket
from spanlake.analytics.streams import BASELINE, CHANGE_LOOKBACK, CONCURRENT, CONCURRENT_SHARE, SEQUENTIAL
from spanlake.analytics.window import Window
from spanlake.instrumentation import semconv as sc

HOUR = dt.timedelta(hours=1)
PROMOTE, WATCH, ROLLBACK = "promote", "keep watching", "roll back"
NOT_RANDOMISED = "before/after, not randomised"
VERDICT_COLUMNS = ["prompt_name", "control", "candidate", "verdict", "reasons", "design", "changed_at",
                   "n_control", "n_candidate"]


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # "continuous" or "rate"
    better: str  # "lower", "higher" or "none" (informational)


METRICS: tuple[Metric, ...] = (
    Metric("duration_ms", "continuous", "lower"), Metric("ttft_s", "continuous", "lower"),
    Metric("cost_usd", "continuous", "lower"), Metric("output_tokens", "continuous", "none"),
    Metric("error", "rate", "lower"), Metric("refusal", "rate", "lower"),
)


@dataclass(frozen=True)
class VerdictParams:
    alpha: float = 0.01
    min_n: int = 200
    min_effect: float = 0.05  # relative change (means) or absolute rate difference that matters


@dataclass
class Verdict:
    prompt_name: str
    control: str
    candidate: str
    verdict: str
    reasons: list[str] = field(default_factory=list)
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    design: str = CONCURRENT
    n_control: int = 0
    n_candidate: int = 0
    changed_at: pd.Timestamp | None = None


def _calls(lake: Lake, window: Window, prompt_name: str) -> pd.DataFrame:
    t = lake.spans(window)
    t = t.filter(t.prompt_name == prompt_name, t.prompt_version.notnull())
    return to_frame(t.select(t.span_id, t.prompt_version, t.duration_ms, t.ttft_s, t.cost_usd,
                             t.output_tokens.cast("float64").name("output_tokens"),
                             lake.failed(t).cast("float64").name("error"),
                             refusal(t).cast("float64").name("refusal")))


def _compare(metric: Metric, control: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    control, candidate = control[~np.isnan(control)], candidate[~np.isnan(candidate)]
    row: dict[str, Any] = {"metric": metric.name, "kind": metric.kind, "better": metric.better,
                           "n_control": len(control), "n_candidate": len(candidate)}
    if min(len(control), len(candidate)) < 2:
        return {**row, "p_value": None, "control": None, "candidate": None, "change": None}
    c_mean, k_mean = float(control.mean()), float(candidate.mean())
    if metric.kind == "rate":
        test = stats.two_proportions(int(control.sum()), len(control), int(candidate.sum()), len(candidate))
        change = k_mean - c_mean
    else:
        test = stats.mann_whitney(control, candidate)
        change = (k_mean - c_mean) / abs(c_mean) if c_mean else 0.0
    return {**row, "control": c_mean, "candidate": k_mean, "change": change, "p_value": test.p_value}


def _judge(row: dict[str, Any], params: VerdictParams) -> str:
    """'worse', 'better', 'same', 'thin' (not enough data) or 'info' for one metric row."""
    if row["better"] == "none":
        return "info"
    if row["p_value"] is None or min(row["n_control"], row["n_candidate"]) < params.min_n:
        return "thin" if row["n_control"] or row["n_candidate"] else "info"
    if row["p_value"] >= params.alpha or abs(row["change"]) < params.min_effect:
        return "same"
    up_is_bad = row["better"] == "lower"
    return "worse" if (row["change"] > 0) == up_is_bad else "better"


def _describe(row: dict[str, Any]) -> str:
    change = f"{row['change']:+.1%}" if row["kind"] == "continuous" else f"{row['change'] * 100:+.1f} pts"
    return f"{row['metric']} {row['control']:.4g} → {row['candidate']:.4g} ({change}, p={row['p_value']:.2g})"


def _eval_rows(lake: Lake, window: Window, calls: pd.DataFrame, control: str, candidate: str
               ) -> list[dict[str, Any]]:
    scores = eval_scores(lake, window, ["prompt_version"])
    if scores.empty or calls.empty:
        return []
    # pyarrow's is_in: pandas' isin over Arrow-backed strings loops in Python (seconds at 10M rows).
    keep = pc.is_in(pa.array(scores["span_id"].astype(str)), value_set=pa.array(calls["span_id"].astype(str)))
    scores = scores[keep.to_numpy(zero_copy_only=False)]
    rows = []
    for name, group in scores.groupby("evaluation_name"):
        is_feedback = name == sc.GEN_AI_EVALUATION_USER_FEEDBACK
        metric = Metric("feedback_positive" if is_feedback else f"eval:{name}",
                        "rate" if is_feedback else "continuous", "higher")
        values = {v: g["score"].to_numpy(float) for v, g in group.groupby("prompt_version")}
        a, b = values.get(control, np.array([])), values.get(candidate, np.array([]))
        if is_feedback:
            a, b = (a >= 0.5).astype(float), (b >= 0.5).astype(float)
        rows.append(_compare(metric, a, b))
    return rows


def compare_versions(source: Any, window: Window, prompt_name: str, candidate: str, control: str,
                     params: VerdictParams = VerdictParams(), control_window: Window | None = None) -> Verdict:
    """Every metric of ``candidate`` against ``control`` for ``prompt_name`` in ``window``, and a verdict.

    With ``control_window`` (a sequential rollout) the control's calls come from that window instead:
    a before/after comparison, labelled not randomised.
    """
    lake = as_lake(source)
    calls = _calls(lake, window, prompt_name)
    if control_window is not None:
        before = _calls(lake, control_window, prompt_name)
        calls = pd.concat([before[before["prompt_version"] == control],
                           calls[calls["prompt_version"] == candidate]], ignore_index=True)
    arms = {v: g for v, g in calls.groupby("prompt_version")}
    empty = calls.iloc[0:0]
    a, b = arms.get(control, empty), arms.get(candidate, empty)
    rows = [_compare(m, a[m.name].to_numpy(float), b[m.name].to_numpy(float)) for m in METRICS]
    scores_window = window if control_window is None else Window(min(window.start, control_window.start),
                                                                 max(window.end, control_window.end))
    rows += _eval_rows(lake, scores_window, calls, control, candidate)
    for row in rows:
        row["judgement"] = _judge(row, params)
    worse = [_describe(r) for r in rows if r["judgement"] == "worse"]
    better = [_describe(r) for r in rows if r["judgement"] == "better"]
    thin = min(len(a), len(b)) < params.min_n
    if worse:
        verdict, reasons = ROLLBACK, [f"worse: {w}" for w in worse]
    elif thin:
        need = f"need {params.min_n} each"
        verdict, reasons = WATCH, [f"not enough data: control n={len(a)}, candidate n={len(b)}, {need}"]
    else:
        verdict = PROMOTE
        reasons = [f"better: {b_}" for b_ in better] or ["no gating metric significantly different"]
    design = CONCURRENT if control_window is None else SEQUENTIAL
    if design == SEQUENTIAL:
        reasons = [f"{NOT_RANDOMISED}: {candidate} since {window.start:%Y-%m-%d %H:%M} vs {control} in the "
                   f"{control_window.duration.days} days before", *reasons]
    return Verdict(prompt_name, control, candidate, verdict, reasons, pd.DataFrame(rows), design, len(a), len(b))


def _arms(calls: pd.DataFrame) -> tuple[str, str] | None:
    """Default candidate (the newest version seen) and control (the busiest other version)."""
    if calls["prompt_version"].nunique() < 2:
        return None
    first = calls.groupby("prompt_version")["first_seen"].min().sort_values()
    candidate = str(first.index[-1])
    counts = calls[calls["prompt_version"] != candidate].groupby("prompt_version")["calls"].sum()
    return candidate, str(counts.idxmax())


def prompt_verdicts(source: Any, window: Window, params: VerdictParams = VerdictParams(),
                    prompt_names: Sequence[str] | None = None) -> pd.DataFrame:
    """One verdict per prompt name whose newest version is live in ``window`` next to, or in place of, another.

    Concurrent: two or more versions live in ``window`` side by side (the old one still answers at
    least ``CONCURRENT_SHARE`` of calls since the new one started). Sequential: the newest version,
    first seen at most ``CHANGE_LOOKBACK`` before the window and still running, replaced the busiest
    earlier one; the candidate since its first call against the control's ``BASELINE`` before it.
    """
    lake = as_lake(source)
    scan = Window(window.start - CHANGE_LOOKBACK - BASELINE, window.end)
    t = lake.spans(scan)
    t = t.filter(t.prompt_name.notnull(), t.prompt_version.notnull())
    hourly = to_frame(t.group_by([t.prompt_name, t.prompt_version, time_bucket(t, HOUR).name("hour")])
                      .aggregate(calls=t.count(), first_seen=t.start_time.min(), last_seen=t.start_time.max(),
                                 in_window=(t.start_time >= window.start).cast("int64").sum()))
    rows = []
    for name, per_hour in hourly.groupby("prompt_name"):
        if prompt_names is not None and name not in prompt_names:
            continue
        v = _verdict_for(lake, window, str(name), per_hour, params)
        if v is not None:
            rows.append({"prompt_name": v.prompt_name, "control": v.control, "candidate": v.candidate,
                         "verdict": v.verdict, "reasons": "; ".join(v.reasons), "design": v.design,
                         "changed_at": v.changed_at, "n_control": v.n_control, "n_candidate": v.n_candidate})
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def _verdict_for(lake: Lake, window: Window, name: str, versions: pd.DataFrame, params: VerdictParams
                 ) -> Verdict | None:
    """The concurrent or sequential verdict for one prompt's hourly version rows (None: nothing to compare)."""
    per_hour = versions
    versions = per_hour.groupby("prompt_version", as_index=False).agg(
        calls=("calls", "sum"), first_seen=("first_seen", "min"), last_seen=("last_seen", "max"),
        in_window=("in_window", "sum"))
    live = versions[versions["in_window"] > 0]
    if live.empty:
        return None
    candidate_row = live.sort_values("first_seen").iloc[-1]
    candidate, changed = str(candidate_row["prompt_version"]), candidate_row["first_seen"]
    if changed < pd.Timestamp(window.start - CHANGE_LOOKBACK) and len(live) < 2:
        return None  # one version for a long time: nothing changed
    others = versions[versions["prompt_version"] != candidate]
    if others.empty:
        return None
    since = pd.Timestamp(max(changed.to_pydatetime(), window.start - CHANGE_LOOKBACK)).floor("h")
    counts = per_hour[per_hour["hour"] >= since].groupby("prompt_version")["calls"].sum().to_dict()
    counts = {str(k): int(v) for k, v in counts.items()}
    after = sum(counts.values())
    control = max(((counts.get(str(v), 0), c, str(v)) for v, c in zip(others["prompt_version"], others["calls"])))[2]
    if after and counts.get(control, 0) / after >= CONCURRENT_SHARE:
        arms = _arms(live.assign(calls=live["in_window"]))
        if arms is None:
            return None
        verdict = compare_versions(lake, window, name, arms[0], arms[1], params)
    else:
        at = changed.to_pydatetime()
        verdict = compare_versions(lake, Window(at, window.end), name, candidate, control, params,
                                   control_window=Window(at - BASELINE, at))
    verdict.changed_at = changed
    return verdict


def prompt_versions(source: Any, window: Window) -> pd.DataFrame:
    """Each prompt's versions live in ``window``: calls, first and last seen (what a version picker lists)."""
    lake = as_lake(source)
    t = lake.spans(window)
    t = t.filter(t.prompt_name.notnull(), t.prompt_version.notnull())
    frame = to_frame(t.group_by([t.prompt_name, t.prompt_version])
                     .aggregate(calls=t.count(), first_seen=t.start_time.min(), last_seen=t.start_time.max()))
    return frame.sort_values(["prompt_name", "first_seen"], ignore_index=True)


def default_arms(versions: pd.DataFrame) -> tuple[str, str] | None:
    """(candidate, control) :func:`prompt_verdicts` would compare for one prompt's rows of :func:`prompt_versions`."""
    return _arms(versions)
