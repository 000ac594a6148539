"""Overview: is the product healthy right now? Requests, errors, spend against budgets, latency, alerts."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from spanlake.ui import components as ui
from spanlake.ui import data
from spanlake.ui.sidebar import current_scope

scope = current_scope()
bucket = data.bucket_for(scope.window)
totals = data.latency_by(scope, ())
series = data.latency_over_time(scope, bucket)
today = scope.over(data.period_window(scope.end, "day"))
month = scope.over(data.period_window(scope.end, "month"))
today_series = data.cost_over_time(today, data.bucket_for(today.window))
month_series = data.cost_over_time(month, data.bucket_for(month.window))
budgets = data.budget_status(scope._replace(services=()))
alerts = data.alert_state(scope.lake_dir)


def first(frame: pd.DataFrame, column: str, default: float = 0.0) -> float:
    value = frame[column].iloc[0] if len(frame) and column in frame else None
    return default if value is None or pd.isna(value) else float(value)


def budget_note(period: str) -> str | None:
    """'N % of $X budget' against the whole-lake budget of that period, when one is configured."""
    rows = budgets[(budgets["period"] == period) & (budgets["scope"] == "all calls")] if len(budgets) else budgets
    if rows.empty:
        return None
    row = rows.iloc[0]
    return f"{row['spend_usd'] / row['hard_usd']:.0%} of ${row['hard_usd']:,.0f} · forecast ${row['forecast_usd']:,.2f}"


requests = int(first(totals, "count"))
errors = int(first(totals, "error_count"))
rate = series["error_count"] / series["count"].where(series["count"] > 0) if len(series) else pd.Series(dtype=float)
firing = alerts[alerts["state"] == "firing"] if len(alerts) else alerts
buckets = pd.date_range(scope.start, scope.end, freq=bucket, tz="UTC")

st.title("Overview")
st.caption(f"{scope.window.label()} · {', '.join(scope.services) or 'all services'}")

row = st.columns(4)
with row[0]:
    ui.metric("Requests", f"{requests:,}", series["count"] if len(series) else None, help="LLM calls in the window")
with row[1]:
    ui.metric("Error rate", f"{errors / requests:.1%}" if requests else "–", rate.fillna(0),
              help=f"{errors:,} failed calls")
with row[2]:
    ui.metric("Spend today", f"${today_series['cost_usd'].sum():,.2f}", today_series["cost_usd"],
              delta=budget_note("day"),
              delta_color="off", help="UTC day so far, against the whole-lake daily budget")
with row[3]:
    ui.metric("Spend this month", f"${month_series['cost_usd'].sum():,.2f}", month_series["cost_usd"],
              delta=budget_note("month"),
              delta_color="off", help="UTC month so far, against the whole-lake monthly budget")

window_cost = data.cost_by(scope, ())
row = st.columns(4)
for column, (label, name, scale, unit) in zip(row, (("TTFT p50", "ttft_s_p50", 1, "s"), ("TTFT p99", "ttft_s_p99", 1, "s"),
                                                    ("Duration p50", "duration_ms_p50", 1000, "s"),
                                                    ("Duration p99", "duration_ms_p99", 1000, "s"))):
    with column:
        points = series[name].fillna(0) / scale if len(series) else None
        ui.metric(label, f"{first(totals, name) / scale:.2f} {unit}", points,
                  help="time to first token, streamed calls only" if name.startswith("ttft") else "whole call")

row = st.columns(4)
with row[0]:
    ui.metric("Firing alerts", f"{len(firing)}", data.firing_over_time(alerts, buckets),
              help="from the last `spanlake analyze`")
with row[1]:
    ui.metric("Spend in window", f"${first(window_cost, 'cost_usd'):,.2f}", data.cost_over_time(scope, bucket)["cost_usd"])
with row[2]:
    ui.metric("Tokens", f"{int(first(window_cost, 'tokens')):,}", help="input + output tokens in the window")
with row[3]:
    ui.metric("Cost per request", f"${first(window_cost, 'cost_per_request_mean'):.4f}",
              help="mean over priced calls")

st.subheader("Budgets")
if budgets.empty:
    ui.empty("No budgets configured: add [[budgets]] tables to spanlake.toml.")
else:
    ui.table(budgets, ["budget", "scope", "period", "spend_usd", "forecast_usd", "soft_usd", "hard_usd", "status",
                       "forecast_status"])

st.subheader("Firing alerts")
if firing.empty:
    ui.empty("Nothing firing.")
else:
    for alert in firing.to_dict("records"):
        ui.badge(f"**{ui.plain(alert['title'])}** — {ui.plain(alert['evidence'])}", "bad" if alert["severity"] == "critical" else "warn")
    st.page_link("app_pages/alerts.py", label="Playbooks on the Alerts page", icon=":material/arrow_forward:")
