"""The sidebar every page shares: time window, services, auto-refresh, and the optional password gate.

Its choices become the :class:`~spanlake.ui.data.Scope` pages read with :func:`current_scope`, and are
mirrored in the URL (``?window=24h&service=web-api``) so a link reproduces what its sender saw.
``?as_of=2026-11-23T00:00`` pins the window's end (to look at an old lake, or to benchmark).
"""

from __future__ import annotations

import datetime as dt
import hmac
import time

import streamlit as st
from spanlake.analytics.window import Window, parse_duration
from spanlake.ui import data
from spanlake.ui.components import plain

WINDOWS = ("1h", "6h", "24h", "7d", "30d")
DEFAULT_WINDOW = "24h"
_SCOPE_KEY = "spanlake_scope"


def require_password(password: str | None) -> None:
    """Stop the run until the configured password has been entered in this session (no-op when unset)."""
    if not password or st.session_state.get("authorised"):
        return
    st.title("spanlake")
    entered = st.text_input("Password", type="password")
    if entered and hmac.compare_digest(entered.encode(), password.encode()):
        st.session_state["authorised"] = True
        st.rerun()
    if entered:
        st.error("Wrong password.")
    st.stop()


def _as_of() -> dt.datetime | None:
    raw = st.query_params.get("as_of")
    if not raw:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        st.sidebar.warning(f"ignoring as_of={plain(repr(raw))}: not an ISO date-time")
        return None
    return moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment


def _window_choice() -> str:
    initial = st.query_params.get("window", DEFAULT_WINDOW)
    choice = st.sidebar.selectbox("Time window", WINDOWS, index=WINDOWS.index(initial) if initial in WINDOWS else 2,
                                  key="window", help="Every page shows this much history, ending now.")
    st.query_params["window"] = choice
    return str(choice)


def _services(scope: data.Scope) -> tuple[str, ...]:
    options = data.values_of(scope, "service_name")
    initial = [s for s in st.query_params.get_all("service") if s in options]
    chosen = st.sidebar.multiselect("Services", options, default=initial, key="services",
                                    placeholder="all services")
    st.query_params["service"] = chosen
    return tuple(chosen)


def _auto_refresh() -> None:
    """When on, rerun the whole app every TTL (a fragment ticks; the first tick is the render itself)."""
    on = st.sidebar.toggle("Auto-refresh", key="auto_refresh", help=f"Reload every {data.TTL.seconds} s")
    st.session_state["rendered_at"] = time.monotonic()
    if not on:
        return

    @st.fragment(run_every=data.TTL)
    def tick() -> None:
        if time.monotonic() - st.session_state.get("rendered_at", 0.0) >= data.TTL.total_seconds() * 0.9:
            st.rerun(scope="app")

    tick()


def render() -> data.Scope:
    """Draw the sidebar and return (and remember for the pages) the scope it selects."""
    require_password(data.settings().ui_password)
    length = _window_choice()
    as_of = _as_of()
    window = Window(data.now(as_of) - parse_duration(length), data.now(as_of))
    unfiltered = data.make_scope(window)
    scope = unfiltered._replace(services=_services(unfiltered))
    st.sidebar.caption(f"{window.label()}" + (" (pinned by as_of)" if as_of else ""))
    _auto_refresh()
    st.session_state[_SCOPE_KEY] = scope
    return scope


def current_scope() -> data.Scope:
    """The scope the sidebar selected in this run."""
    return st.session_state[_SCOPE_KEY]
