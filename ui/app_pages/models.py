"""Models: which model really answered (a silent swap behind a name shows as a new band), and which
request models are unpinned aliases the provider can re-point at any time."""

from __future__ import annotations

import streamlit as st
from spanlake.ui import components as ui
from spanlake.ui import data
from spanlake.ui.sidebar import current_scope

scope = current_scope()

st.title("Models")
st.subheader("Model changes")
changes = data.model_changes(scope)
if changes.empty:
    ui.empty("No request model changed its response model or fingerprint in this window.")
else:
    for change in changes.to_dict("records"):
        p = ui.plain
        ui.badge(f"**{p(change['request_model'])}** answered by a new {p(change['field'])}: {p(change['old_value'])} → "
                 f"**{p(change['new_value'])}** since {change['changed_at']:%Y-%m-%d %H:%M} UTC "
                 f"({change['calls_since']:,} calls)", "warn")

timeline = data.model_timeline(scope, data.bucket_for(scope.window))
if timeline.empty:
    ui.empty("No LLM calls in the window.")
else:
    busiest = timeline.groupby("request_model")["calls"].sum().sort_values(ascending=False).index.tolist()
    changed = [m for m in changes["request_model"].unique() if m in busiest] if len(changes) else []
    model = st.selectbox("Timeline of", changed + [m for m in busiest if m not in changed], key="timeline_model")
    ui.time_chart(timeline[timeline["request_model"] == model], "calls", color="response_model", kind="bar",
                  title=f"Calls to {model}, by the model that answered")

st.subheader("Unpinned aliases")
unpinned = data.unpinned_models(scope)
if unpinned.empty:
    ui.empty("Every request model is pinned to a dated version.")
else:
    ui.table(unpinned, ["request_model", "calls", "resolved_to", "services", "last_seen", "warning"])
