"""Budgets: spend so far, status against soft/hard limits, forecast, and the cached GET /v1/budgets body."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from span_factory import NOW, spans, write_lake
from spanlake.analytics.budgets import BudgetsRoute, budget_status, period_bounds
from spanlake.analytics.config import Budget
from spanlake.collector.storage.reader import open_snapshot


def _hourly_spend(lake_dir, usd_per_hour: dict[str, float], hours: int = 48):
    """One call per feature per hour for ``hours`` hours up to NOW, costing the given amount."""
    tables = []
    for feature, usd in usd_per_hour.items():
        times = [int((NOW - dt.timedelta(hours=h, minutes=30)).timestamp() * 1e6) for h in range(hours)]
        tables.append(spans(hours, np.array(times), feature=feature, cost_usd=np.full(hours, usd)))
    write_lake(lake_dir, tables)


def test_period_bounds():
    assert period_bounds("day", NOW) == (dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc),
                                         dt.datetime(2026, 11, 24, tzinfo=dt.timezone.utc))
    start, end = period_bounds("month", dt.datetime(2026, 12, 31, 23, tzinfo=dt.timezone.utc))
    assert (start.month, end.year, end.month) == (12, 2027, 1)


def test_status_spend_and_forecast(lake_dir, snapshot):
    _hourly_spend(lake_dir, {"chat": 1.0, "search": 0.25})
    budgets = [Budget("chat-day", "day", hard_usd=10.0, soft_usd=5.0, filters={"feature": "chat"}),
               Budget("search-day", "day", hard_usd=10.0, soft_usd=4.0, filters={"feature": "search"}),
               Budget("each-day", "day", hard_usd=20.0, per="feature"),
               Budget("all-month", "month", hard_usd=1000.0)]
    frame = budget_status(snapshot(), budgets, NOW)
    chat = frame[frame.budget == "chat-day"].iloc[0]
    # NOW is 12:00, one call at hh:30 for each of the 12 hours of today → 12 USD; trailing rate 1 USD/h
    assert chat.spend_usd == pytest.approx(12.0) and chat.status == "exceeded"
    assert chat.forecast_usd == pytest.approx(12.0 + 12 * 1.0)
    search = frame[frame.budget == "search-day"].iloc[0]
    assert search.spend_usd == pytest.approx(3.0) and search.status == "ok"
    assert search.forecast_status == "over_soft"  # 3 + 12 * 0.25 = 6 ≥ 4
    per = frame[frame.budget == "each-day"].set_index("scope")
    assert set(per.index) == {"feature=chat", "feature=search"}
    month = frame[frame.budget == "all-month"].iloc[0]
    assert month.spend_usd == pytest.approx(48 * 1.25) and month.status == "ok"


def test_route_caches_for_ttl(lake_dir):
    _hourly_spend(lake_dir, {"chat": 1.0})
    clock = [NOW.timestamp()]
    opened = []

    def counting_open(path):
        opened.append(path)
        return open_snapshot(path)

    route = BudgetsRoute(lake_dir, [Budget("chat-day", "day", hard_usd=10.0, filters={"feature": "chat"})],
                         ttl_s=30, clock=lambda: clock[0], open_snapshot=counting_open)
    status, content_type, body = route()
    assert status == 200 and content_type == "application/json"
    doc = json.loads(body)
    assert doc["exceeded"] == ["chat-day [feature=chat]"]
    assert doc["budgets"][0]["status"] == "exceeded" and doc["budgets"][0]["spend_usd"] == pytest.approx(12.0)
    clock[0] += 10
    assert route()[2] == body and len(opened) == 1
    clock[0] += 30
    route()
    assert len(opened) == 2
