"""Cost: where the money goes (by any tag, over time), budgets with their forecast, and the top spenders."""

from __future__ import annotations

import datetime as dt

import streamlit as st
from spanlake.ui import components as ui
from spanlake.ui import data
from spanlake.ui.sidebar import current_scope

DIMENSIONS = ("feature", "user_id", "session_id", "request_model", "provider", "service_name", "prompt_version",
              "environment")
TOP_GROUPS = 8
scope = current_scope()


def by_dimension() -> None:
    left, right = st.columns([3, 1])
    options = [*DIMENSIONS, *(f"tag:{k}" for k in data.tag_keys(scope))]
    dimension = left.selectbox("Break down by", options, key="cost_by")
    step = right.segmented_control("Bucket", ["hour", "day"], default="hour" if scope.window.duration <= dt.timedelta(
        days=2) else "day", key="cost_bucket") or "hour"
    bucket = dt.timedelta(hours=1) if step == "hour" else dt.timedelta(days=1)
    summary = data.cost_by(scope, (dimension,))
    series = data.cost_over_time(scope, bucket, (dimension,))
    top = set(summary[dimension].fillna("(none)").astype(str).head(TOP_GROUPS))
    labels = series[dimension].fillna("(none)").astype(str)
    series = series.assign(group=labels.where(labels.isin(top), "other"))
    series = series.groupby(["bucket", "group"], as_index=False)["cost_usd"].sum()
    ui.time_chart(series, "cost_usd", color="group", kind="bar", title=f"Cost per {step} by {dimension}",
                  y_title="USD")
    ui.table(summary, [dimension, "count", "cost_usd", "cost_per_request_mean", "cost_per_request_p99", "tokens",
                       "usd_per_1k_tokens", "priced_count", "failed_count", "failed_cost_usd"], key="cost_table")


def budgets() -> None:
    st.subheader("Budgets")
    frame = data.budget_status(scope._replace(services=()))
    if frame.empty:
        ui.empty("No budgets configured: add [[budgets]] tables to spanlake.toml.")
        return
    frame = frame.assign(name=frame["budget"] + " (" + frame["scope"] + ")", spent=frame["spend_usd"] / frame["hard_usd"],
                         forecast=frame["forecast_usd"] / frame["hard_usd"])
    long = frame.melt(id_vars=["name"], value_vars=["spent", "forecast"], var_name="amount", value_name="of hard limit")
    ui.bar_chart(long, "name", "of hard limit", color="amount", percent=True,
                 title="Spent so far and forecast for the period, as a share of the hard limit")
    ui.table(frame, ["budget", "scope", "period", "spend_usd", "forecast_usd", "soft_usd", "hard_usd", "status",
                     "forecast_status"])


def spenders() -> None:
    st.subheader("Top spenders")
    tabs = st.tabs(["Features", "Users", "Sessions"], key="spenders", bind="query-params")
    for tab, dimension in zip(tabs, ("feature", "user_id", "session_id")):
        if not tab.open:
            continue
        with tab:
            frame = data.top_spenders(scope, dimension)
            if frame.empty:
                ui.empty("No priced calls.")
            else:
                ui.table(frame, ["value", "cost_usd", "count", "share"])


st.title("Cost")
by_dimension()
budgets()
spenders()
st.subheader("Money spent on failed calls")
failed = data.failed_cost(scope)
if failed.empty:
    ui.empty("No failed calls.")
else:
    ui.table(failed)
