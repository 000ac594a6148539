"""Alerts: what `spanlake analyze` found needs a human, firing first, each with its playbook."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from spanlake.ui import components as ui
from spanlake.ui import data
from spanlake.ui.sidebar import current_scope

scope = current_scope()


def when(value: object) -> str:
    return "–" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d %H:%M} UTC"


def playbook(alert: dict[str, object]) -> None:
    """The alert's fields as text inside our own layout (evidence quotes model and feature names from spans)."""
    p = ui.plain
    st.markdown(f"**Evidence:** {p(alert['evidence'])}  \n**Do now:** {p(alert['mitigation'])}  \n"
                f"**Look at:** {p(alert['where_to_look'])}  \n"
                f"_{p(alert['category'])} · {p(alert['severity'])} · from {p(alert['source'])} · first seen "
                f"{when(alert['first_seen'])} · last seen {when(alert['last_seen'])}_")


st.title("Alerts")
frame = data.alert_state(scope.lake_dir)
if frame.empty:
    ui.empty("No alerts stored yet: `spanlake analyze --every 60` evaluates them and keeps their state.")
firing = frame[frame["state"] == "firing"]
resolved = frame[frame["state"] == "resolved"]

st.subheader(f"Firing ({len(firing)})")
if firing.empty:
    ui.empty("Nothing firing.")
for alert in firing.sort_values("severity").to_dict("records"):
    ui.badge(f"**{ui.plain(alert['title'])}**", "bad" if alert["severity"] == "critical" else "warn")
    playbook(alert)

st.subheader(f"Resolved ({len(resolved)})")
for alert in resolved.sort_values("resolved_at", ascending=False).to_dict("records"):
    with st.expander(f"✓ {ui.plain(alert['title'])} — resolved {when(alert['resolved_at'])}"):
        playbook(alert)
