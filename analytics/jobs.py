"""``spanlake analyze``: every analytic over one snapshot, results into the lake, alerts, the catalog.

Each job is a named function of a :class:`JobContext` (snapshot, ``now``, window, config) returning
a DataFrame; a failing job is logged and recorded in the ``runs`` table and the others still run.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from spanlake.analytics import alerts as alerting
from spanlake.analytics.anomalies import detect_anomalies, multi_metric_outliers
from spanlake.analytics.budgets import budget_status
from spanlake.analytics.catalog import rebuild_catalog
from spanlake.analytics.config import AnalyticsConfig
from spanlake.analytics.cost import cost_summary, cost_timeseries, failed_call_cost, top_spenders
from spanlake.analytics.drift import eval_drift, output_drift
from spanlake.analytics.errors import error_classes, provider_fallbacks
from spanlake.analytics.findings import alerts_from_results
from spanlake.analytics.lake import Lake
from spanlake.analytics.latency import latency_summary, latency_timeseries, slo_status
from spanlake.analytics.models import model_changes, unpinned_models
from spanlake.analytics.patterns import failure_patterns
from spanlake.analytics.prompts import prompt_verdicts
from spanlake.analytics.results import result_files, vacuum_results, write_result
from spanlake.analytics.window import Window, floor_time

logger = logging.getLogger(__name__)

HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class JobContext:
    lake: Lake
    now: dt.datetime
    window: Window
    config: AnalyticsConfig

    def week(self) -> Window:
        return Window.last("7d", self.now)


def _top_spenders(c: JobContext) -> pd.DataFrame:
    return pd.concat([top_spenders(c.lake, c.window, d) for d in ("feature", "user_id", "session_id")],
                     ignore_index=True)


JOBS: dict[str, Callable[[JobContext], pd.DataFrame]] = {
    "latency_by_model": lambda c: latency_summary(c.lake, c.window, ["provider", "request_model", "operation"]),
    "latency_by_prompt": lambda c: latency_summary(c.lake, c.window, ["prompt_name", "prompt_version"]),
    "latency_by_input_size": lambda c: latency_summary(c.lake, c.window, ["request_model", "input_bucket"]),
    "latency_hourly": lambda c: latency_timeseries(c.lake, c.window, HOUR, ["request_model"]),
    "slo_status": lambda c: slo_status(c.lake, c.config.slos, c.now),
    "cost_by_feature": lambda c: cost_summary(c.lake, c.window, ["feature"]),
    "cost_by_model": lambda c: cost_summary(c.lake, c.window, ["provider", "request_model"]),
    "cost_hourly": lambda c: cost_timeseries(c.lake, c.window, HOUR, ["feature"]),
    "cost_daily": lambda c: cost_timeseries(c.lake, Window.last("30d", c.now), DAY, ["feature"]),
    "top_spenders": _top_spenders,
    "failed_cost": lambda c: failed_call_cost(c.lake, c.window),
    "budgets": lambda c: budget_status(c.lake, c.config.budgets, c.now),
    "output_drift": lambda c: output_drift(c.lake, c.window, c.window.before("7d")),
    "eval_drift": lambda c: eval_drift(c.lake, c.window, c.window.before("7d")),
    "anomalies": lambda c: detect_anomalies(c.lake, c.window, c.config.anomalies),
    "multi_metric_outliers": lambda c: multi_metric_outliers(c.lake, c.window, c.config.anomalies),
    "failure_patterns": lambda c: failure_patterns(c.lake, c.window),
    "model_changes": lambda c: model_changes(c.lake, c.week()),
    "unpinned_models": lambda c: unpinned_models(c.lake, c.window),
    "prompt_verdicts": lambda c: prompt_verdicts(c.lake, c.window),
    "error_classes": lambda c: error_classes(c.lake, c.window),
    "provider_fallbacks": lambda c: provider_fallbacks(c.lake, c.window),
}


@dataclass
class RunOutcome:
    """What one run produced: result frames, seconds per job, failures, and the alert state."""

    results: dict[str, pd.DataFrame] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    alerts: pd.DataFrame | None = None
    transitions: list[alerting.Transition] = field(default_factory=list)
    catalog: Path | None = None


def run_jobs(source: Any, config: AnalyticsConfig, now: dt.datetime, window: Window,
             progress: Progress | None = None, only: Mapping[str, Any] | None = None) -> RunOutcome:
    """Run every job (or those named in ``only``) over one snapshot; nothing is written."""
    lake = source if isinstance(source, Lake) else Lake(getattr(source, "con", source))
    ctx = JobContext(lake, now, window, config)
    outcome = RunOutcome()
    jobs = {k: v for k, v in JOBS.items() if only is None or k in only}
    for i, (name, job) in enumerate(jobs.items()):
        if progress:
            progress(i, len(jobs), name)
        started = time.perf_counter()
        try:
            outcome.results[name] = job(ctx)
        except Exception as exc:  # job boundary: one broken analytic must not stop the others
            logger.exception("analytics job %s failed", name)
            outcome.failures[name] = f"{type(exc).__name__}: {exc}"
        outcome.seconds[name] = time.perf_counter() - started
    if progress:
        progress(len(jobs), len(jobs), "done")
    return outcome


def alert_results(outcome: RunOutcome, window: Window) -> dict[str, pd.DataFrame]:
    """Results as the alert builders should see them.

    Anomalies alert only for the last complete bucket, the one ending where the window ends (an hour
    that was odd yesterday and is normal now is history, shown by the report, not a firing alert);
    a pooled or daily bucket that started before the window and still runs does alert. Model
    changes only inside the window.
    """
    results = dict(outcome.results)
    end = pd.Timestamp(floor_time(window.end, HOUR))
    anomalies = results.get("anomalies")
    if anomalies is not None and not anomalies.empty:
        hours = anomalies["bucket_hours"] if "bucket_hours" in anomalies else 1
        results["anomalies"] = anomalies[anomalies["bucket"] + pd.to_timedelta(hours, "h") == end]
    outliers = results.get("multi_metric_outliers")
    if outliers is not None and not outliers.empty:
        results["multi_metric_outliers"] = outliers[outliers["bucket"] == end - pd.Timedelta(HOUR)]
    changes = results.get("model_changes")
    if changes is not None and not changes.empty:
        results["model_changes"] = changes[changes["changed_at"] >= pd.Timestamp(window.start)]
    return results


def _runs_row(outcome: RunOutcome, now: dt.datetime, window: Window, snapshot_versions: Mapping[str, int]
              ) -> pd.DataFrame:
    return pd.DataFrame([{"job": name, "seconds": outcome.seconds.get(name, 0.0),
                          "rows": len(outcome.results[name]) if name in outcome.results else None,
                          "error": outcome.failures.get(name), "run_at": now, "window_start": window.start,
                          "window_end": window.end, "spans_version": snapshot_versions.get("spans")}
                         for name in outcome.seconds])


def analyze(settings: Any, config: AnalyticsConfig, now: dt.datetime, window: Window,
            progress: Progress | None = None) -> RunOutcome:
    """One full analyze: jobs, result tables, alerts (stored, sent), catalog rebuilt."""
    from spanlake.collector.storage.reader import open_snapshot

    lake_dir: Path = settings.lake_dir
    with open_snapshot(lake_dir) as snap:
        outcome = run_jobs(snap, config, now, window, progress)
        for name, frame in outcome.results.items():
            write_result(lake_dir, name, frame)
        write_result(lake_dir, "runs", _runs_row(outcome, now, window, snap.versions))
        current = alerts_from_results(alert_results(outcome, window))
        outcome.alerts, outcome.transitions = alerting.update_alerts(lake_dir, current, now)
        alerting.send_webhook(config.alerts, outcome.transitions)
        vacuum_results(lake_dir)
        outcome.catalog = rebuild_catalog(settings.data_dir, snap.files, result_files(lake_dir))
    return outcome
