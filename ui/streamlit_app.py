"""spanlake's viewer: the router. The sidebar sets the window and services; each page draws one question.

Run it with ``spanlake ui`` (which passes the lake location to this process through SPANLAKE_*).
"""

from __future__ import annotations

import streamlit as st
from spanlake.ui import sidebar

st.set_page_config(page_title="spanlake", page_icon=":material/stacked_line_chart:", layout="wide")

OVERVIEW = st.Page("app_pages/overview.py", title="Overview", icon=":material/dashboard:", url_path="overview")


def _root() -> None:
    """``/`` hands over to ``/overview``: Streamlit serves a default page only at the root, so the overview
    is not the default page itself, or its own address (the one the sidebar links to) would answer "not found"."""
    st.switch_page(OVERVIEW, query_params=st.query_params.to_dict())  # a deep link keeps its filters


PAGES = [
    st.Page(_root, title="spanlake", url_path="root", default=True, visibility="hidden"),
    OVERVIEW,
    st.Page("app_pages/traces.py", title="Traces", icon=":material/account_tree:", url_path="traces"),
    st.Page("app_pages/latency.py", title="Latency", icon=":material/timer:", url_path="latency"),
    st.Page("app_pages/cost.py", title="Cost", icon=":material/payments:", url_path="cost"),
    st.Page("app_pages/quality.py", title="Quality", icon=":material/verified:", url_path="quality"),
    st.Page("app_pages/prompts.py", title="Prompts", icon=":material/edit_note:", url_path="prompts"),
    st.Page("app_pages/models.py", title="Models", icon=":material/model_training:", url_path="models"),
    st.Page("app_pages/alerts.py", title="Alerts", icon=":material/notifications_active:", url_path="alerts"),
]

page = st.navigation(PAGES)
sidebar.render()
page.run()
