"""Latency: duration and time-to-first-token quantiles by any grouping, per window or time bucket, and SLOs.

The aggregation is one Ibis expression (:func:`latency_expr`), so it runs unchanged on Spark.
Quantiles are exact (``quantile_cont``; measured faster than approximate ones on DuckDB).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import ibis.expr.types as ir
import pandas as pd
from spanlake.analytics.config import SLO
from spanlake.analytics.lake import Lake, as_lake, to_frame
from spanlake.analytics.window import Window

QUANTILES = (0.5, 0.95, 0.99)
DEFAULT_GROUPS = ("request_model",)


def latency_metrics(t: ir.Table) -> dict[str, ir.Value]:
    """The named latency aggregates: count, duration (ms) and TTFT (s) mean and quantiles.

    Quantiles come as one multi-quantile per column (one sort instead of three: 30 % faster on
    DuckDB; Spark and ClickHouse have the same form); :func:`expand_quantiles` names them.
    """
    return {"count": t.count(), "duration_ms_mean": t.duration_ms.mean(),
            "duration_ms_q": t.duration_ms.quantile(list(QUANTILES)),
            "ttft_count": t.ttft_s.count(), "ttft_s_mean": t.ttft_s.mean(),
            "ttft_s_q": t.ttft_s.quantile(list(QUANTILES)),
            "error_count": ((t.status_code == "ERROR") | t.error_type.notnull()).sum()}


def expand_quantiles(frame: pd.DataFrame) -> pd.DataFrame:
    """Replace each ``<name>_q`` list column by ``<name>_p50``, ``_p95``, ``_p99`` columns."""
    for column in [c for c in frame.columns if c.endswith("_q")]:
        base = column.removesuffix("_q")
        at = list(frame.columns).index(column)
        values = frame.pop(column)
        for offset, q in enumerate(QUANTILES):
            picked = [None if v is None or len(v) <= offset else v[offset] for v in values]
            frame.insert(at + offset, f"{base}_p{round(q * 100)}", pd.array(picked, dtype="Float64").astype(float))
    return frame


def latency_expr(lake: Lake, window: Window, group_by: Sequence[str] = DEFAULT_GROUPS,
                 bucket: dt.timedelta | None = None) -> ir.Table:
    """Latency aggregates over ``window`` grouped by ``group_by`` (and a time bucket when given)."""
    t = lake.spans(window)
    keys = lake.dimensions(t, list(group_by))
    if bucket is not None:
        keys = [time_bucket(t, bucket).name("bucket"), *keys]
    return t.group_by(keys).aggregate(**latency_metrics(t)) if keys else t.aggregate(**latency_metrics(t))


def time_bucket(t: ir.Table, bucket: dt.timedelta) -> ir.TimestampValue:
    """Start of the UTC bucket holding each span's start.

    Days are the ``dt`` partition column itself; other buckets are integer arithmetic on the
    nanosecond start. Both avoid truncating a time-zone-aware timestamp, which DuckDB does through
    ICU calendars at several times the cost (1.07 s against 0.04 s for 10M spans by day).
    """
    if bucket == dt.timedelta(days=1):
        return t.dt.cast("timestamp")
    seconds = int(bucket.total_seconds())
    if seconds <= 0 or bucket % dt.timedelta(seconds=1):
        raise ValueError("bucket must be a whole number of seconds")
    return (t.start_time_unix_nano // (seconds * 1_000_000_000) * seconds).as_timestamp("s")


def latency_summary(source: Any, window: Window, group_by: Sequence[str] = DEFAULT_GROUPS) -> pd.DataFrame:
    """Latency per group over ``window``, slowest p99 first."""
    frame = expand_quantiles(to_frame(latency_expr(as_lake(source), window, group_by)))
    return frame.sort_values("duration_ms_p99", ascending=False, ignore_index=True)


def latency_timeseries(source: Any, window: Window, bucket: dt.timedelta = dt.timedelta(hours=1),
                       group_by: Sequence[str] = ()) -> pd.DataFrame:
    """Latency per time bucket (and group), oldest bucket first."""
    frame = expand_quantiles(to_frame(latency_expr(as_lake(source), window, group_by, bucket)))
    return frame.sort_values(["bucket", *group_by], ignore_index=True)


def _slo_value(row: pd.Series, metric: str) -> float | None:
    """The SLO metric from one latency row, in the SLO's unit (seconds; a fraction for error_rate)."""
    if metric == "error_rate":
        return float(row["error_count"]) / float(row["count"]) if row["count"] else None
    kind, stat = metric.split("_", 1)
    column = f"duration_ms_{stat}" if kind == "duration" else f"ttft_s_{stat}"
    value = row[column]
    if value is None or pd.isna(value):
        return None
    return float(value) / 1000.0 if kind == "duration" else float(value)


def slo_status(source: Any, slos: Sequence[SLO], now: dt.datetime) -> pd.DataFrame:
    """Each SLO's current value over its window ending at ``now`` and whether it is breached."""
    lake = as_lake(source)
    rows = []
    for slo in slos:
        window = Window.last(slo.window, now)
        t = lake.spans(window)
        for dim, value in slo.filters.items():
            t = t.filter(lake.dimension(t, dim) == value)
        frame = expand_quantiles(to_frame(t.aggregate(**latency_metrics(t))))
        row = frame.iloc[0]
        value = _slo_value(row, slo.metric) if int(row["count"]) else None
        status = "no_data" if value is None else ("breach" if value > slo.max else "ok")
        rows.append({"slo": slo.name, "metric": slo.metric, "filters": _filter_text(slo.filters),
                     "window_start": window.start, "window_end": window.end, "count": int(row["count"]),
                     "value": value, "max": slo.max, "budget_used": None if value is None else value / slo.max,
                     "status": status})
    return pd.DataFrame(rows, columns=["slo", "metric", "filters", "window_start", "window_end", "count",
                                       "value", "max", "budget_used", "status"])


def _filter_text(filters: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(filters.items())) or "all calls"
