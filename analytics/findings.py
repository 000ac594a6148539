"""Findings → alerts: each analytic result that needs a human becomes an Alert with a playbook category,
the evidence, the immediate mitigation and where to look. Pure: result frames in, alerts out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd
from spanlake.analytics.alerts import Alert

ANOMALY_CATEGORY = {"volume": "outage", "error_rate": "outage", "cost_per_request": "cost_spike",
                    "cost_per_hour": "cost_spike", "latency_p99_ms": "latency_spike", "ttft_p99_s": "latency_spike",
                    "tokens_per_request": "cost_spike", "output_tokens_mean": "quality_regression",
                    "cost_per_day": "cost_spike", "cost_per_request_day": "cost_spike"}
MITIGATION = {
    "outage": "fail over to the fallback provider/model, raise retries with backoff, tell users",
    "cost_spike": "cap max_tokens, turn on prompt caching, route the feature to a cheaper model, "
                  "throttle the top spender",
    "latency_spike": "stream responses, cut context length, switch region/model, raise timeouts",
    "quality_regression": "roll back the prompt/model version, pin the model, run the eval suite",
}
OUTAGE_CLASSES = {"rate_limit", "server_error", "timeout"}
ERROR_RATE_MIN, ERROR_COUNT_MIN = 0.05, 20


def _f(value: object, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, (int, float)) else str(value)


def from_slos(frame: pd.DataFrame) -> list[Alert]:
    out = []
    for r in frame[frame["status"] == "breach"].to_dict("records"):
        category = "outage" if r["metric"] == "error_rate" else "latency_spike"
        out.append(Alert(f"slo:{r['slo']}", category, "critical", f"SLO {r['slo']} breached ({r['metric']})",
                         f"{r['metric']} = {_f(r['value'])} > {_f(r['max'])} over {r['count']} calls "
                         f"({r['filters']})", MITIGATION[category],
                         "spanlake report; result table slo_status; latency_hourly by model", "slo"))
    return out


def from_budgets(frame: pd.DataFrame) -> list[Alert]:
    out = []
    for r in frame[frame["status"].isin(["warning", "exceeded"])].to_dict("records"):
        hard = r["status"] == "exceeded"
        out.append(Alert(f"budget:{r['budget']}:{r['scope']}", "cost_spike", "critical" if hard else "warning",
                         f"budget {r['budget']} {'exceeded' if hard else 'past soft limit'} ({r['scope']})",
                         f"spent {r['spend_usd']:.2f} USD this {r['period']} (soft {r['soft_usd']}, hard "
                         f"{r['hard_usd']}); forecast {r['forecast_usd']:.2f}",
                         ("calls in this scope should stop: GET /v1/budgets says exceeded; " if hard else "")
                         + MITIGATION["cost_spike"], "result tables budgets, top_spenders, cost_hourly", "budgets"))
    return out


def from_anomalies(frame: pd.DataFrame) -> list[Alert]:
    """The latest flagged bucket per series: one alert per (metric, group), not per hour."""
    if frame.empty:
        return []
    latest = frame.sort_values("bucket").groupby(["metric", "dimension", "group"], as_index=False).last()
    out = []
    for r in latest.to_dict("records"):
        category = ANOMALY_CATEGORY.get(r["metric"], "quality_regression")
        hours = int(r.get("bucket_hours") or 1)
        span = "hour" if hours == 1 else ("day" if hours == 24 else f"{hours} h")
        feature = r.get("feature")
        named = "" if r["dimension"] == "feature" or not isinstance(feature, str) else f", feature={feature}"
        moved = r.get("moved_with")
        with_ = f" with {moved}" if isinstance(moved, str) and moved else ""
        out.append(Alert(f"anomaly:{r['metric']}:{r['dimension']}:{r['group']}", category, "warning",
                         f"{r['metric']} {r['direction']} for {r['dimension']}={r['group']}{named}{with_}",
                         f"{_f(r['value'])} in the {span} from {r['bucket']:%Y-%m-%d %H:00} vs baseline "
                         f"{_f(r['baseline_mean'])} ± {_f(r['baseline_std'])} (z={r['z']:+.1f}, "
                         f"{int(r['count'])} calls)",
                         MITIGATION[category], f"result table anomalies; traces of that {span} in the UI", "anomalies"))
    return out


def from_outliers(frame: pd.DataFrame) -> list[Alert]:
    out = []
    for r in frame.sort_values("bucket").groupby(["dimension", "group"], as_index=False).last().to_dict("records") \
            if not frame.empty else []:
        category = "outage" if "error_rate" in r["drivers"].split(",")[0] else (
            "latency_spike" if "latency" in r["drivers"].split(",")[0] else "cost_spike")
        out.append(Alert(f"outlier:{r['dimension']}:{r['group']}", category, "warning",
                         f"unusual hour for {r['dimension']}={r['group']} (multi-metric)",
                         f"{r['bucket']:%Y-%m-%d %H:00}: {r['drivers']} (isolation score {r['score']:.3f})",
                         MITIGATION[category], "result table multi_metric_outliers and anomalies", "anomalies"))
    return out


def _since(row: Mapping[str, object]) -> str:
    change = row.get("attributed_to")
    return f" since {change}" if isinstance(change, str) and change else ""


def from_drift(frame: pd.DataFrame, source: str) -> list[Alert]:
    return [Alert(f"drift:{source}:{r['metric']}:{r['group']}", "quality_regression", "warning",
                  f"{r['metric']} drifted for {r['group']}{_since(r)}", str(r["reason"]) + (
                      f"; positive rate {r['rate_baseline']:.2f} → {r['rate_current']:.2f}"
                      if pd.notna(r.get("rate_current")) else ""),
                  MITIGATION["quality_regression"], f"result table {source}; compare outputs in the UI", source)
            for r in frame[frame["drift"].astype(bool)].to_dict("records")]


def from_model_changes(frame: pd.DataFrame) -> list[Alert]:
    return [Alert(f"model:{r['request_model']}:{r['field']}:{r['new_value']}", "quality_regression", "warning",
                  f"{r['request_model']} answered by a new {r['field']} (silent provider update)",
                  f"{r['old_value']} → {r['new_value']} since {r['changed_at']:%Y-%m-%d %H:%M} UTC "
                  f"({r['calls_since']} calls)", "pin a dated model version; re-run evals on the new one",
                  "result tables model_changes, output_drift, eval_drift", "models")
            for r in frame.to_dict("records")]


def prompt_category(reasons: str) -> str:
    """cost_spike when every worse metric of a verdict is cost, else quality_regression."""
    worse = [part.strip() for part in reasons.split(";") if part.strip().startswith("worse:")]
    return "cost_spike" if worse and all(w.startswith("worse: cost_usd") for w in worse) else "quality_regression"


def from_prompts(frame: pd.DataFrame) -> list[Alert]:
    out = []
    for r in frame[frame["verdict"] == "roll back"].to_dict("records"):
        sequential = r.get("design") == "sequential"
        design = " (before/after, not randomised)" if sequential else ""
        out.append(Alert(f"prompt:{r['prompt_name']}:{r['candidate']}", prompt_category(str(r["reasons"])),
                         "warning" if sequential else "critical",
                         f"prompt {r['prompt_name']} version {r['candidate']}: roll back{design}", r["reasons"],
                         f"route traffic back to version {r['control']}", "result table prompt_verdicts", "prompts"))
    return out


def from_errors(frame: pd.DataFrame) -> list[Alert]:
    rows = frame[(frame["rate"] >= ERROR_RATE_MIN) & (frame["count"] >= ERROR_COUNT_MIN)]
    out = []
    for r in rows.to_dict("records"):
        category = "outage" if r["error_class"] in OUTAGE_CLASSES else "quality_regression"
        group = ", ".join(f"{k}={r[k]}" for k in ("provider", "request_model") if k in r)
        out.append(Alert(f"errors:{r['error_class']}:{group}", category,
                         "critical" if r["rate"] >= 0.2 else "warning", f"{r['error_class']} at {r['rate']:.0%} ({group})",
                         f"{r['count']} of {r['calls']} calls in the window", MITIGATION[category],
                         "result tables error_classes, failure_patterns, provider_fallbacks", "errors"))
    return out


BUILDERS: Mapping[str, Callable[[pd.DataFrame], list[Alert]]] = {
    "slo_status": from_slos, "budgets": from_budgets, "anomalies": from_anomalies,
    "multi_metric_outliers": from_outliers, "output_drift": lambda f: from_drift(f, "output_drift"),
    "eval_drift": lambda f: from_drift(f, "eval_drift"), "model_changes": from_model_changes,
    "prompt_verdicts": from_prompts, "error_classes": from_errors,
}


def alerts_from_results(results: Mapping[str, pd.DataFrame]) -> list[Alert]:
    """Every alert the results call for (results missing or empty produce none)."""
    alerts: list[Alert] = []
    for name, build in BUILDERS.items():
        frame = results.get(name)
        if frame is not None and not frame.empty:
            alerts.extend(build(frame))
    return alerts
