"""Cost: totals, per request and per token, by any tag or attribute and by hour/day; top spenders.

Costs are priced at ingest (``cost_usd``; NULL when the model's price is unknown), so here they are
only summed. ``priced_count`` says how many calls the total covers, so an unknown price is visible
rather than counted as zero. Failed calls' cost is reported separately: money spent for nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
from spanlake.analytics.lake import Lake, as_lake, to_frame
from spanlake.analytics.latency import time_bucket
from spanlake.analytics.window import Window

SPENDER_DIMENSIONS = ("feature", "user_id", "session_id")


def cost_metrics(lake: Lake, t: ir.Table) -> dict[str, ir.Value]:
    """The named cost aggregates of a set of calls."""
    failed = lake.failed(t)
    tokens = t.total_tokens.coalesce(t.input_tokens.fill_null(0) + t.output_tokens.fill_null(0))
    return {
        "count": t.count(),
        "priced_count": t.cost_usd.count(),
        "cost_usd": t.cost_usd.sum().fill_null(0.0),
        "cost_per_request_mean": t.cost_usd.mean(),
        "cost_per_request_p99": t.cost_usd.quantile(0.99),
        "tokens": tokens.sum(),
        "usd_per_1k_tokens": (t.cost_usd.sum() / tokens.sum().nullif(0)) * 1000,
        "failed_count": failed.sum(),
        "failed_cost_usd": failed.ifelse(t.cost_usd, ibis.null(float)).sum().fill_null(0.0),
    }


def cost_expr(lake: Lake, window: Window, group_by: Sequence[str] = ("feature",),
              bucket: dt.timedelta | None = None) -> ir.Table:
    """Cost aggregates over ``window`` grouped by ``group_by`` (and a time bucket when given)."""
    t = lake.spans(window)
    keys = lake.dimensions(t, list(group_by))
    if bucket is not None:
        keys = [time_bucket(t, bucket).name("bucket"), *keys]
    metrics = cost_metrics(lake, t)
    return t.group_by(keys).aggregate(**metrics) if keys else t.aggregate(**metrics)


def cost_summary(source: Any, window: Window, group_by: Sequence[str] = ("feature",)) -> pd.DataFrame:
    """Cost per group over ``window``, biggest spender first."""
    frame = to_frame(cost_expr(as_lake(source), window, group_by))
    return frame.sort_values("cost_usd", ascending=False, ignore_index=True)


def cost_timeseries(source: Any, window: Window, bucket: dt.timedelta = dt.timedelta(hours=1),
                    group_by: Sequence[str] = ()) -> pd.DataFrame:
    """Cost per hour or day (any ``bucket``) and group, oldest first."""
    frame = to_frame(cost_expr(as_lake(source), window, group_by, bucket))
    return frame.sort_values(["bucket", *group_by], ignore_index=True)


def top_spenders(source: Any, window: Window, dimension: str = "feature", limit: int = 10) -> pd.DataFrame:
    """The ``limit`` biggest spenders by ``dimension`` (feature, user_id, session_id or a tag) with their share."""
    lake = as_lake(source)
    t = lake.spans(window)
    key = lake.dimension(t, dimension)
    t = t.filter(key.notnull())
    grouped = t.group_by(lake.dimension(t, dimension)).aggregate(cost_usd=t.cost_usd.sum(), count=t.count())
    frame = to_frame(grouped.filter(grouped.cost_usd.notnull()).order_by(ibis.desc("cost_usd")))
    total = float(frame["cost_usd"].sum()) or 1.0
    frame = frame.head(limit).reset_index(drop=True)
    frame["share"] = frame["cost_usd"] / total
    frame.insert(0, "dimension", dimension)
    return frame.rename(columns={dimension: "value"})


def failed_call_cost(source: Any, window: Window, group_by: Sequence[str] = ("provider", "error_type")
                     ) -> pd.DataFrame:
    """What failed calls cost, by provider and error type."""
    lake = as_lake(source)
    t = lake.spans(window)
    t = t.filter(lake.failed(t))
    frame = to_frame(t.group_by(lake.dimensions(t, list(group_by)))
                     .aggregate(count=t.count(), cost_usd=t.cost_usd.sum().fill_null(0.0)))
    return frame.sort_values("cost_usd", ascending=False, ignore_index=True)
