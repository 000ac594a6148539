"""Budgets: spend so far per day/month against soft and hard limits, a forecast, and GET /v1/budgets.

The forecast is spend so far plus the trailing spend rate (last 24 h for a daily budget, last 7 days
for a monthly one) times the time left in the period: a trailing rate absorbs the daily cycle that
a straight-line extrapolation of a morning would not.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
from spanlake.analytics.config import Budget, load_config
from spanlake.analytics.lake import Lake, as_lake, to_frame
from spanlake.analytics.window import Window, utc

logger = logging.getLogger(__name__)

TRAILING = {"day": dt.timedelta(hours=24), "month": dt.timedelta(days=7)}
COLUMNS = ["budget", "scope", "period", "period_start", "period_end", "spend_usd", "soft_usd", "hard_usd",
           "forecast_usd", "status", "forecast_status"]


def period_bounds(period: str, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The UTC day or calendar month holding ``now``."""
    now = utc(now)
    if period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + dt.timedelta(days=1)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def _status(spend: float, budget: Budget) -> str:
    if spend >= budget.hard_usd:
        return "exceeded"
    if budget.soft_usd is not None and spend >= budget.soft_usd:
        return "warning"
    return "ok"


def _spend(lake: Lake, budget: Budget, now: dt.datetime) -> pd.DataFrame:
    """Spend in the period so far and over the trailing window, per ``per`` value when set."""
    start, _ = period_bounds(budget.period, now)
    trailing_start = utc(now) - TRAILING[budget.period]
    t = lake.spans(Window(min(start, trailing_start), now))
    for dim, value in budget.filters.items():
        t = t.filter(lake.dimension(t, dim) == value)
    cost = t.cost_usd.fill_null(0.0)
    if lake.has("spans", "cost_suspect"):  # a call above max_call_cost_usd never counts (older lakes lack the flag)
        cost = t.cost_suspect.fill_null(False).ifelse(0.0, cost)
    metrics = {"spend_usd": (t.start_time >= ibis.literal(start)).ifelse(cost, 0.0).sum(),
               "trailing_usd": (t.start_time >= ibis.literal(trailing_start)).ifelse(cost, 0.0).sum()}
    if budget.per:
        key = lake.dimension(t, budget.per)
        return to_frame(t.filter(key.notnull()).group_by(key.name("scope_value")).aggregate(**metrics))
    frame = to_frame(t.aggregate(**metrics))
    frame["scope_value"] = None
    return frame


def budget_status(source: Any, budgets: Sequence[Budget], now: dt.datetime) -> pd.DataFrame:
    """One row per budget (per scope value for ``per`` budgets): spend, limits, forecast and status."""
    lake = as_lake(source)
    rows = []
    for budget in budgets:
        start, end = period_bounds(budget.period, now)
        rate = 1.0 / TRAILING[budget.period].total_seconds()
        remaining = (end - utc(now)).total_seconds()
        for rec in _spend(lake, budget, now).to_dict("records"):
            spend = float(rec["spend_usd"] or 0.0)
            forecast = spend + float(rec["trailing_usd"] or 0.0) * rate * remaining
            scope = _scope(budget, rec["scope_value"])
            rows.append({"budget": budget.name, "scope": scope, "period": budget.period, "period_start": start,
                         "period_end": end, "spend_usd": spend, "soft_usd": budget.soft_usd,
                         "hard_usd": budget.hard_usd, "forecast_usd": forecast, "status": _status(spend, budget),
                         "forecast_status": "over_hard" if forecast >= budget.hard_usd else (
                             "over_soft" if budget.soft_usd and forecast >= budget.soft_usd else "ok")})
    return pd.DataFrame(rows, columns=COLUMNS)


def _scope(budget: Budget, per_value: Any) -> str:
    parts = [f"{k}={v}" for k, v in sorted(budget.filters.items())]
    if budget.per:
        parts.append(f"{budget.per}={per_value}")
    return ", ".join(parts) or "all calls"


def budgets_json(frame: pd.DataFrame, now: dt.datetime) -> bytes:
    """The GET /v1/budgets body: an app checks ``status == "exceeded"`` for its scope and stops calling."""
    records = []
    for rec in frame.to_dict("records"):
        rec = {k: (v.isoformat() if isinstance(v, (dt.datetime, pd.Timestamp)) else v) for k, v in rec.items()}
        records.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()})
    exceeded = sorted({r["budget"] + ("" if r["scope"] == "all calls" else f" [{r['scope']}]")
                       for r in records if r["status"] == "exceeded"})
    return json.dumps({"generated_at": utc(now).isoformat(), "exceeded": exceeded, "budgets": records}).encode()


class BudgetsRoute:
    """GET /v1/budgets for the collector: recomputed at most every ``ttl_s``, served from cache between.

    The collector must not import analytics, so the CLI builds this and passes it as an extra route.
    """

    def __init__(self, lake_dir: Path, budgets: Sequence[Budget], ttl_s: float = 30.0,
                 clock: Callable[[], float] = time.time,
                 open_snapshot: Callable[[Path], Any] | None = None) -> None:
        from spanlake.collector.storage.reader import open_snapshot as default_open

        self.lake_dir, self.budgets, self.ttl_s, self.clock = lake_dir, tuple(budgets), ttl_s, clock
        self._open = open_snapshot or default_open
        self._lock = threading.Lock()
        self._cached: tuple[float, tuple[int, str, bytes]] | None = None

    def __call__(self) -> tuple[int, str, bytes]:
        with self._lock:
            now = self.clock()
            if self._cached is None or now - self._cached[0] >= self.ttl_s:
                self._cached = (now, self._compute(now))
            return self._cached[1]

    def _compute(self, now_s: float) -> tuple[int, str, bytes]:
        now = dt.datetime.fromtimestamp(now_s, dt.timezone.utc)
        try:
            with self._open(self.lake_dir) as snap:
                body = budgets_json(budget_status(snap, self.budgets, now), now)
            return 200, "application/json", body
        except Exception as exc:  # route boundary: answer 500, keep the collector serving
            logger.exception("computing budgets failed")
            return 500, "application/json", json.dumps({"error": str(exc)}).encode()


def budgets_route_from_settings(settings: Any, ttl_s: float = 30.0) -> BudgetsRoute:
    """The route the CLI wires into the collector, configured from the settings' [budgets] tables."""
    return BudgetsRoute(settings.lake_dir, load_config(settings.extra).budgets, ttl_s)
