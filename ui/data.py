"""The UI's only caching layer: thin ``st.cache_*`` wrappers around analytics calls, one short TTL.

Every page asks for data through a :class:`Scope` (lake, its Delta versions, the global window and
services). The snapshot is a cached resource keyed on the lake's Delta versions, so all sessions share
one in-memory DuckDB per lake version; a lock serialises its use (a DuckDB connection is not for
concurrent threads). Results are cached per scope for :data:`TTL`; "now" moves in TTL steps, so a
window that ends now still hits the cache between steps.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import streamlit as st
from deltalake import DeltaTable
from spanlake.analytics import (
    alerts,
    budgets,
    cost,
    drift,
    errors,
    latency,
    models,
    patterns,
    prompts,
    traces,
)
from spanlake.analytics.config import AnalyticsConfig, load_config
from spanlake.analytics.results import read_result
from spanlake.analytics.scope import ScopedLake
from spanlake.analytics.window import Window, floor_time
from spanlake.collector.storage import schema
from spanlake.collector.storage.lake_writer import table_path
from spanlake.collector.storage.reader import LakeSnapshot, open_snapshot

TTL = dt.timedelta(seconds=15)
"""How long any result is reused; also the auto-refresh period and the step "now" moves in."""
OPTIONS_SPAN = dt.timedelta(hours=24)
"""Filter pickers list the values seen in the window's last day (enough to pick from, fast on a big lake)."""


class Scope(NamedTuple):
    """What every query depends on; hashable, so it is the cache key."""

    lake_dir: str
    versions: tuple[tuple[str, int], ...]
    start: dt.datetime
    end: dt.datetime
    services: tuple[str, ...] = ()

    @property
    def window(self) -> Window:
        return Window(self.start, self.end)

    def over(self, window: Window) -> Scope:
        """The same lake and services over another window."""
        return self._replace(start=window.start, end=window.end)


@dataclass
class _Shared:
    """One open snapshot, its lock, and one Lake per service selection."""

    snapshot: LakeSnapshot
    lock: threading.Lock = field(default_factory=threading.Lock)
    lakes: dict[tuple[str, ...], ScopedLake] = field(default_factory=dict)

    def lake(self, services: tuple[str, ...]) -> ScopedLake:
        if services not in self.lakes:
            self.lakes[services] = ScopedLake(self.snapshot.con, services)
        return self.lakes[services]


@st.cache_resource(show_spinner=False)
def settings() -> Any:
    """The process's settings (``spanlake ui`` passes the data directory and config through SPANLAKE_*)."""
    from spanlake.ui.cli import ui_settings

    return ui_settings()


def config() -> AnalyticsConfig:
    """SLOs, budgets and alert settings from the config file's tables."""
    return load_config(settings().extra)


@st.cache_data(ttl=TTL, show_spinner=False)
def lake_versions(lake_dir: str) -> tuple[tuple[str, int], ...]:
    """Each table's current Delta version (a few small file reads): the snapshot's cache key."""
    versions = []
    for table in schema.TABLES:
        path = table_path(Path(lake_dir), table)
        versions.append((table, DeltaTable(str(path)).version() if DeltaTable.is_deltatable(str(path)) else -1))
    return tuple(versions)


@st.cache_resource(show_spinner=False, max_entries=2, on_release=lambda shared: shared.snapshot.close())
def _shared(lake_dir: str, versions: tuple[tuple[str, int], ...]) -> _Shared:
    return _Shared(open_snapshot(Path(lake_dir)))


@contextmanager
def lake(scope: Scope) -> Iterator[ScopedLake]:
    """The scope's Lake, held exclusively while the caller queries it."""
    shared = _shared(scope.lake_dir, scope.versions)
    with shared.lock:
        yield shared.lake(scope.services)


def now(as_of: dt.datetime | None = None) -> dt.datetime:
    """The moment windows end at: ``as_of`` when given, else the wall clock rounded down to the TTL."""
    return as_of if as_of is not None else floor_time(dt.datetime.now(dt.timezone.utc), TTL)


def make_scope(window: Window, services: tuple[str, ...] = ()) -> Scope:
    lake_dir = str(settings().lake_dir)
    return Scope(lake_dir, lake_versions(lake_dir), window.start, window.end, tuple(sorted(services)))


# --- pickers -------------------------------------------------------------------------------------------


def _recent(scope: Scope) -> Window:
    return Window(max(scope.start, scope.end - OPTIONS_SPAN), scope.end)


@st.cache_data(ttl=TTL, show_spinner=False)
def values_of(scope: Scope, dimension: str) -> list[str]:
    """Values a dimension takes recently (busiest first), for a filter picker."""
    with lake(scope) as lk:
        return traces.dimension_values(lk, _recent(scope), dimension)


@st.cache_data(ttl=TTL, show_spinner=False)
def tag_keys(scope: Scope) -> list[str]:
    with lake(scope) as lk:
        return traces.tag_keys(lk, _recent(scope))


# --- traces --------------------------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def trace_list(scope: Scope, filters: tuple[tuple[str, str], ...], text: str, status: str | None,
               limit: int) -> pd.DataFrame:
    with lake(scope) as lk:
        return traces.trace_list(lk, scope.window, dict(filters), text or None, status, limit)


@dataclass(frozen=True)
class TraceView:
    """Everything the trace view draws: spans, captured content and scores of one trace."""

    spans: pd.DataFrame
    content: pd.DataFrame
    scores: pd.DataFrame


@st.cache_data(ttl=TTL, show_spinner=False)
def trace(scope: Scope, trace_id: str, at: dt.datetime | None) -> TraceView:
    """One trace, reading only the partitions around ``at`` (or the window's, for a link without a time)."""
    with lake(scope) as lk:
        table = traces.trace_spans(lk, trace_id, at) if at else traces.trace_spans_in(lk, trace_id, scope.window)
        frame = table.to_pandas()
        if frame.empty:
            return TraceView(frame, pd.DataFrame(), pd.DataFrame())
        around = pd.Timestamp(frame["start_time"].min()).to_pydatetime()
        return TraceView(frame, traces.trace_content(lk, trace_id, around), traces.trace_scores(lk, trace_id, around))


# --- latency and cost ----------------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def latency_by(scope: Scope, group_by: tuple[str, ...]) -> pd.DataFrame:
    with lake(scope) as lk:
        return latency.latency_summary(lk, scope.window, list(group_by))


@st.cache_data(ttl=TTL, show_spinner=False)
def latency_over_time(scope: Scope, bucket: dt.timedelta, group_by: tuple[str, ...] = ()) -> pd.DataFrame:
    with lake(scope) as lk:
        return latency.latency_timeseries(lk, scope.window, bucket, list(group_by))


@st.cache_data(ttl=TTL, show_spinner=False)
def slo_status(scope: Scope) -> pd.DataFrame:
    with lake(scope) as lk:
        return latency.slo_status(lk, config().slos, scope.end)


@st.cache_data(ttl=TTL, show_spinner=False)
def cost_by(scope: Scope, group_by: tuple[str, ...]) -> pd.DataFrame:
    with lake(scope) as lk:
        return cost.cost_summary(lk, scope.window, list(group_by))


@st.cache_data(ttl=TTL, show_spinner=False)
def cost_over_time(scope: Scope, bucket: dt.timedelta, group_by: tuple[str, ...] = ()) -> pd.DataFrame:
    with lake(scope) as lk:
        return cost.cost_timeseries(lk, scope.window, bucket, list(group_by))


@st.cache_data(ttl=TTL, show_spinner=False)
def top_spenders(scope: Scope, dimension: str) -> pd.DataFrame:
    with lake(scope) as lk:
        return cost.top_spenders(lk, scope.window, dimension)


@st.cache_data(ttl=TTL, show_spinner=False)
def failed_cost(scope: Scope) -> pd.DataFrame:
    with lake(scope) as lk:
        return cost.failed_call_cost(lk, scope.window)


@st.cache_data(ttl=TTL, show_spinner=False)
def budget_status(scope: Scope) -> pd.DataFrame:
    """Budgets as of the window's end (their periods are the day/month holding it, not the window)."""
    with lake(scope) as lk:
        return budgets.budget_status(lk, config().budgets, scope.end)


# --- quality, prompts, models --------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def output_drift(scope: Scope, group_by: tuple[str, ...]) -> pd.DataFrame:
    """Output length now against the window of the same length just before."""
    with lake(scope) as lk:
        # this page compares the window with the one before it, per chosen grouping (and draws both);
        # stream rows (a change against the week before it) are in the report and the alerts
        return drift.output_drift(lk, scope.window, scope.window.before(), list(group_by), streams=False)


@st.cache_data(ttl=TTL, show_spinner=False)
def output_histograms(scope: Scope, group: tuple[tuple[str, str | None], ...], metric: str) -> pd.DataFrame:
    with lake(scope) as lk:
        return drift.output_histograms(lk, scope.window, scope.window.before(), dict(group), metric)


@st.cache_data(ttl=TTL, show_spinner=False)
def eval_over_time(scope: Scope, bucket: dt.timedelta) -> pd.DataFrame:
    with lake(scope) as lk:
        return drift.eval_timeseries(lk, scope.window, bucket)


@st.cache_data(ttl=TTL, show_spinner=False)
def eval_drift(scope: Scope) -> pd.DataFrame:
    with lake(scope) as lk:
        return drift.eval_drift(lk, scope.window, scope.window.before())


@st.cache_data(ttl=TTL, show_spinner=False)
def error_classes(scope: Scope) -> pd.DataFrame:
    with lake(scope) as lk:
        return errors.error_classes(lk, scope.window)


@st.cache_data(ttl=TTL, show_spinner=False)
def provider_fallbacks(scope: Scope) -> pd.DataFrame:
    with lake(scope) as lk:
        return errors.provider_fallbacks(lk, scope.window)


@st.cache_data(ttl=TTL, show_spinner=False)
def failure_patterns(scope: Scope) -> pd.DataFrame:
    with lake(scope) as lk:
        return patterns.failure_patterns(lk, scope.window)


@st.cache_data(ttl=TTL, show_spinner=False)
def prompt_verdicts(scope: Scope) -> pd.DataFrame:
    with lake(scope) as lk:
        return prompts.prompt_verdicts(lk, scope.window)


@st.cache_data(ttl=TTL, show_spinner=False)
def compare_versions(scope: Scope, prompt_name: str, candidate: str, control: str) -> prompts.Verdict:
    with lake(scope) as lk:
        return prompts.compare_versions(lk, scope.window, prompt_name, candidate, control)


@st.cache_data(ttl=TTL, show_spinner=False)
def model_changes(scope: Scope) -> pd.DataFrame:
    with lake(scope) as lk:
        return models.model_changes(lk, scope.window)


@st.cache_data(ttl=TTL, show_spinner=False)
def model_timeline(scope: Scope, bucket: dt.timedelta) -> pd.DataFrame:
    with lake(scope) as lk:
        return models.model_timeline(lk, scope.window, bucket)


@st.cache_data(ttl=TTL, show_spinner=False)
def unpinned_models(scope: Scope) -> pd.DataFrame:
    with lake(scope) as lk:
        return models.unpinned_models(lk, scope.window)


# --- alerts --------------------------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def alert_state(lake_dir: str) -> pd.DataFrame:
    """The alerts ``spanlake analyze`` stored (firing and recently resolved); empty before its first run."""
    frame = read_result(Path(lake_dir), alerts.ALERTS_TABLE)
    return frame if frame is not None else pd.DataFrame(columns=alerts.COLUMNS)


def firing_over_time(frame: pd.DataFrame, buckets: pd.DatetimeIndex) -> pd.Series:
    return alerts.firing_counts(frame, buckets)


def group_of(label: str, keys: tuple[str, ...]) -> tuple[tuple[str, str | None], ...]:
    """A drift row's group label as (dimension, value) pairs over ``keys`` (absent: None)."""
    parsed: Mapping[str, str] = drift.parse_group_label(label)
    return tuple((k, parsed.get(k)) for k in keys)


def bucket_for(window: Window) -> dt.timedelta:
    """Chart resolution for a window: about 12–30 points, on round boundaries."""
    for limit, step in ((dt.timedelta(hours=1), dt.timedelta(minutes=5)), (dt.timedelta(hours=6),
                        dt.timedelta(minutes=15)), (dt.timedelta(days=1), dt.timedelta(hours=1)),
                        (dt.timedelta(days=7), dt.timedelta(hours=6))):
        if window.duration <= limit:
            return step
    return dt.timedelta(days=1)


def period_window(end: dt.datetime, period: str) -> Window:
    """The UTC day or month holding ``end``, up to ``end`` (what "spend today/this month" covers)."""
    start, _ = budgets.period_bounds(period, end)
    return Window(min(start, end - dt.timedelta(microseconds=1)), end)


@st.cache_data(ttl=TTL, show_spinner=False)
def prompt_versions(scope: Scope) -> pd.DataFrame:
    with lake(scope) as lk:
        return prompts.prompt_versions(lk, scope.window)


@st.cache_data(ttl=TTL, show_spinner=False)
def stored_result(lake_dir: str, name: str) -> pd.DataFrame | None:
    """A result table the last ``spanlake analyze`` wrote (e.g. prompt_verdicts, with its run in ``runs``)."""
    return read_result(Path(lake_dir), name)
