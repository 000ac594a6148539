"""Latency: how long calls take and how soon the first token arrives, by model, prompt version and
input size; and whether each SLO holds."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from spanlake.ui import components as ui
from spanlake.ui import data
from spanlake.ui.sidebar import current_scope

COLUMNS = ["count", "duration_ms_p50", "duration_ms_p95", "duration_ms_p99", "ttft_s_p50", "ttft_s_p99",
           "error_count"]
BREAKDOWNS = {"By model": ("provider", "request_model"), "By prompt version": ("prompt_name", "prompt_version"),
              "By input size": ("request_model", "input_bucket")}
scope = current_scope()


def slo_section() -> None:
    slos = data.slo_status(scope)
    st.subheader("SLOs")
    if slos.empty:
        ui.empty("No SLOs configured: add [[slo]] tables to spanlake.toml.")
        return
    for slo in slos.to_dict("records"):
        value = "no data" if slo["value"] is None or pd.isna(slo["value"]) else f"{slo['value']:.3g}"
        level = {"ok": "ok", "breach": "bad"}.get(slo["status"], "warn")
        p = ui.plain
        ui.badge(f"**{p(slo['slo'])}** — {p(slo['metric'])} = {value} (max {slo['max']:g}) over {slo['count']:,} "
                 f"calls, {p(slo['filters'])}: **{p(slo['status'])}**", level)


def percentile_bars(frame: pd.DataFrame, label: str) -> None:
    """p50 and p99 duration side by side per group."""
    long = frame.melt(id_vars=[label], value_vars=["duration_ms_p50", "duration_ms_p99"], var_name="quantile",
                      value_name="ms")
    ui.bar_chart(long, label, "ms", color="quantile")


def breakdown(keys: tuple[str, ...]) -> None:
    frame = data.latency_by(scope, keys)
    if frame.empty:
        ui.empty("No LLM calls in the window.")
        return
    frame = frame.assign(group=frame[list(keys)].fillna("(none)").astype(str).agg(" · ".join, axis=1))
    percentile_bars(frame, "group")
    ui.table(frame, [*keys, *COLUMNS])


st.title("Latency")
slo_section()
for tab, keys in zip(st.tabs(list(BREAKDOWNS), key="breakdown", bind="query-params"), BREAKDOWNS.values()):
    if tab.open:  # only the open tab's query runs
        with tab:
            breakdown(keys)

st.subheader("Over time")
series = data.latency_over_time(scope, data.bucket_for(scope.window), ("request_model",))
left, right = st.columns(2)
with left:
    ui.time_chart(series, "duration_ms_p99", color="request_model", title="Duration p99 (ms)")
with right:
    ui.time_chart(series.dropna(subset=["ttft_s_p99"]), "ttft_s_p99", color="request_model", title="TTFT p99 (s)")
