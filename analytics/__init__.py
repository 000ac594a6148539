"""spanlake analytics: the numbers an LLM team runs its product by, as pure functions over a snapshot.

Every analytic takes a reader snapshot (or its DuckDB connection), a :class:`Window` and its grouping,
and ``now`` where it needs one; none reads the wall clock. ``spanlake analyze`` runs them all
(:func:`analyze`), ``spanlake report`` renders them (:func:`build_report`).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "anomalies": ("detect_anomalies", "multi_metric_outliers"),
    "budgets": ("BudgetsRoute", "budget_status", "budgets_route_from_settings"),
    "config": ("SLO", "AnalyticsConfig", "Budget", "load_config"),
    "cost": ("cost_summary", "cost_timeseries", "failed_call_cost", "top_spenders"),
    "drift": ("eval_drift", "output_drift"),
    "errors": ("error_classes", "provider_fallbacks"),
    "jobs": ("JOBS", "analyze", "run_jobs"),
    "lake": ("Lake",),
    "latency": ("latency_summary", "latency_timeseries", "slo_status"),
    "models": ("model_changes", "unpinned_models"),
    "patterns": ("failure_patterns",),
    "prompts": ("compare_versions", "prompt_verdicts"),
    "report": ("build_report", "render_json", "render_text"),
    "streams": ("stream_changes",),
    "traces": ("trace_spans",),
    "window": ("Window", "parse_duration"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = [
    "JOBS",
    "SLO",
    "AnalyticsConfig",
    "Budget",
    "BudgetsRoute",
    "Lake",
    "Window",
    "analyze",
    "budget_status",
    "budgets_route_from_settings",
    "build_report",
    "compare_versions",
    "cost_summary",
    "cost_timeseries",
    "detect_anomalies",
    "error_classes",
    "eval_drift",
    "failed_call_cost",
    "failure_patterns",
    "latency_summary",
    "latency_timeseries",
    "load_config",
    "model_changes",
    "multi_metric_outliers",
    "output_drift",
    "parse_duration",
    "prompt_verdicts",
    "provider_fallbacks",
    "render_json",
    "render_text",
    "run_jobs",
    "slo_status",
    "stream_changes",
    "top_spenders",
    "trace_spans",
    "unpinned_models",
]


def __getattr__(name: str) -> Any:
    """Import lazily: the collector imports only the budgets route, not scikit-learn and scipy."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'spanlake.analytics' has no attribute {name!r}")
    return getattr(importlib.import_module(f"spanlake.analytics.{_MODULE_OF[name]}"), name)
