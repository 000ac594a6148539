"""Quality: did answers change (output length against the previous window, both distributions drawn), how
do evaluations and users score them, and how do calls fail (error classes, top failure patterns)?"""

from __future__ import annotations

import datetime as dt

import streamlit as st
from spanlake.ui import components as ui
from spanlake.ui import data
from spanlake.ui.sidebar import current_scope

GROUPINGS = {"feature": ("feature",), "prompt version and model": ("prompt_name", "prompt_version", "request_model"),
             "model": ("request_model",)}
METRICS = {"output tokens": "output_tokens", "output characters": "output_chars"}
scope = current_scope()


def output_drift() -> None:
    st.subheader("Output length drift")
    st.caption(f"This window against the {ui.duration_text(scope.window.duration)} before it: KS test and PSI; "
               "a drift needs both a significant and a material shift.")
    left, right = st.columns(2)
    keys = GROUPINGS[left.selectbox("Compare by", list(GROUPINGS), key="drift_by")]
    metric = METRICS[right.selectbox("Measure", list(METRICS), key="drift_metric")]
    frame = data.output_drift(scope, keys)
    frame = frame[frame["metric"] == metric]
    if frame.empty:
        ui.empty("No LLM output in the window.")
        return
    ui.table(frame, ["group", "drift", "n_baseline", "n_current", "mean_baseline", "mean_current", "change_pct",
                     "ks_p", "psi", "reason"], key="drift_table")
    group = st.selectbox("Distributions of", list(frame["group"]), key="drift_group")
    histograms = data.output_histograms(scope, data.group_of(group, keys), metric)
    ui.distributions(histograms, f"{metric}: baseline vs current — {group}", metric)


def evaluations() -> None:
    st.subheader("Evaluation and feedback scores")
    bucket = max(data.bucket_for(scope.window), dt.timedelta(hours=1))
    series = data.eval_over_time(scope, bucket)
    left, right = st.columns(2)
    with left:
        ui.time_chart(series, "mean_score", color="evaluation_name", title="Mean score")
    with right:
        ui.time_chart(series, "positive_rate", color="evaluation_name", title="Share ≥ 0.5 (thumbs up)")
    drifted = data.eval_drift(scope)
    if len(drifted):
        ui.table(drifted, ["group", "drift", "n_baseline", "n_current", "mean_baseline", "mean_current",
                           "rate_baseline", "rate_current", "reason"])


def failures() -> None:
    st.subheader("Errors by class")
    classes = data.error_classes(scope)
    if classes.empty:
        ui.empty("No failed calls.")
    else:
        ui.bar_chart(classes.groupby("error_class", as_index=False)["count"].sum(), "error_class", "count")
        ui.table(classes, ["error_class", "provider", "request_model", "count", "calls", "rate", "cost_usd"])
    fallbacks = data.provider_fallbacks(scope)
    if len(fallbacks):
        st.markdown("**Provider fallbacks** (a failed call followed in the same trace by another provider)")
        ui.table(fallbacks)
    st.subheader("Top failure patterns")
    found = data.failure_patterns(scope)
    if found.empty:
        ui.empty("No failures to group.")
    else:
        ui.table(found, ["count", "share", "pattern", "example", "error_types", "providers", "models", "last_seen"])


st.title("Quality")
SECTIONS = {"Output drift": output_drift, "Evaluations and feedback": evaluations, "Errors and failure patterns": failures}
for tab, draw in zip(st.tabs(list(SECTIONS), key="section", bind="query-params"), SECTIONS.values()):
    if tab.open:  # only the open tab's queries run
        with tab:
            draw()
