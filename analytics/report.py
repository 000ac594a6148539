"""``spanlake report``: the findings for a window as readable tables, or as JSON for machines.

The report runs the analytics live over the current snapshot (nothing is written); its alerts are the
findings of that window, and the stored alert state (firing/resolved) from the last analyze is shown too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from spanlake.analytics.alerts import ALERTS_TABLE
from spanlake.analytics.config import AnalyticsConfig
from spanlake.analytics.findings import alerts_from_results
from spanlake.analytics.jobs import Progress, alert_results, run_jobs
from spanlake.analytics.results import read_result
from spanlake.analytics.window import Window

SECTIONS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    # (result name, heading, columns shown in text; None = all)
    ("slo_status", "SLOs", ("slo", "metric", "filters", "count", "value", "max", "status")),
    ("budgets", "Budgets", ("budget", "scope", "period", "spend_usd", "soft_usd", "hard_usd", "forecast_usd",
                            "status")),
    ("latency_by_model", "Latency by model", ("provider", "request_model", "operation", "count",
                                              "duration_ms_p50", "duration_ms_p95", "duration_ms_p99",
                                              "ttft_s_p50", "ttft_s_p99")),
    ("cost_by_feature", "Cost by feature", ("feature", "count", "cost_usd", "cost_per_request_mean",
                                            "cost_per_request_p99", "usd_per_1k_tokens", "failed_cost_usd")),
    ("top_spenders", "Top spenders", ("dimension", "value", "cost_usd", "count", "share")),
    ("error_classes", "Errors by class", ("provider", "request_model", "error_class", "count", "rate")),
    ("provider_fallbacks", "Provider fallbacks", ("from_provider", "to_provider", "count", "traces")),
    ("failure_patterns", "Top failure patterns", ("count", "share", "pattern", "error_types")),
    ("anomalies", "Anomalies", ("bucket", "bucket_hours", "metric", "group", "feature", "value", "baseline_mean", "z",
                                "moved_with")),
    ("multi_metric_outliers", "Multi-metric outliers", ("bucket", "group", "drivers")),
    ("output_drift", "Output drift (flagged)", ("metric", "group", "n_current", "change_pct", "ks_p", "psi",
                                                "attributed_to")),
    ("eval_drift", "Evaluation drift (flagged)", ("group", "n_current", "mean_baseline", "mean_current",
                                                  "rate_baseline", "rate_current")),
    ("model_changes", "Model changes", ("changed_at", "request_model", "field", "old_value", "new_value")),
    ("unpinned_models", "Unpinned model aliases", ("request_model", "calls", "resolved_to")),
    ("prompt_verdicts", "Prompt versions", ("prompt_name", "design", "control", "candidate", "verdict", "reasons")),
)
FLAGGED_ONLY = {"output_drift", "eval_drift"}


def build_report(source: Any, config: AnalyticsConfig, now: dt.datetime, window: Window,
                 lake_dir: Path | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Every section's DataFrame plus the window's findings (as alerts) and the stored alert state."""
    outcome = run_jobs(source, config, now, window, progress)
    findings = [dataclasses.asdict(a) for a in alerts_from_results(alert_results(outcome, window))]
    stored = read_result(lake_dir, ALERTS_TABLE) if lake_dir is not None else None
    sections = {}
    for name, _, _ in SECTIONS:
        frame = outcome.results.get(name, pd.DataFrame())
        if name in FLAGGED_ONLY and "drift" in frame:
            frame = frame[frame["drift"].astype(bool)]
        sections[name] = frame
    return {"window": window, "generated_at": now, "findings": findings, "sections": sections,
            "alert_state": stored if stored is not None else pd.DataFrame(), "failures": outcome.failures}


def _table(frame: pd.DataFrame, columns: tuple[str, ...] | None, limit: int = 20) -> str:
    if frame.empty:
        return "  (none)"
    shown = frame[[c for c in (columns or tuple(frame.columns)) if c in frame.columns]].head(limit)
    text = shown.to_string(index=False, max_colwidth=60, float_format=lambda v: f"{v:.4g}")
    more = f"\n  … {len(frame) - limit} more rows" if len(frame) > limit else ""
    return "\n".join("  " + line for line in text.splitlines()) + more


def render_text(report: dict[str, Any]) -> str:
    """The report as terminal text: findings first, then one table per section."""
    window: Window = report["window"]
    lines = [f"spanlake report — {window.label()}", ""]
    findings = report["findings"]
    lines.append(f"Findings ({len(findings)})")
    for a in findings:
        lines += [f"  [{a['severity']}] {a['category']}: {a['title']}", f"      evidence:   {a['evidence']}",
                  f"      mitigation: {a['mitigation']}", f"      look at:    {a['where_to_look']}"]
    if not findings:
        lines.append("  (none: nothing needs attention)")
    state = report["alert_state"]
    if not state.empty:
        lines += ["", "Alert state (last analyze)", _table(state, ("state", "category", "title", "first_seen",
                                                                     "last_seen", "resolved_at"))]
    for name, heading, columns in SECTIONS:
        lines += ["", heading, _table(report["sections"][name], columns)]
    for name, error in report["failures"].items():
        lines.append(f"\n! job {name} failed: {error}")
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def render_json(report: dict[str, Any]) -> str:
    """The report as one JSON document: window, findings, alert state, and every section's rows."""
    window: Window = report["window"]
    doc = {"window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
           "generated_at": _plain(report["generated_at"]),
           "findings": [{k: _plain(v) for k, v in a.items()} for a in report["findings"]],
           "alert_state": _records(report["alert_state"]),
           "sections": {name: _records(frame) for name, frame in report["sections"].items()},
           "failures": report["failures"]}
    return json.dumps(doc)
