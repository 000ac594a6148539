"""Latency quantiles, SLOs and cost figures on generated data with known answers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy import stats
from span_factory import NOW, hourly_times, spans, write_lake
from spanlake.analytics.config import SLO, load_config
from spanlake.analytics.cost import cost_summary, cost_timeseries, failed_call_cost, top_spenders
from spanlake.analytics.latency import latency_summary, latency_timeseries, slo_status
from spanlake.analytics.window import Window

H24 = Window.last("24h", NOW)


def _two_models(lake_dir, n_per_hour=200, seed=3):
    rng = np.random.default_rng(seed)
    n = 24 * n_per_hour
    times = hourly_times(NOW - dt.timedelta(hours=24), 24, n_per_hour, rng)
    model = np.where(rng.random(n) < 0.5, "fast", "slow")
    duration = np.where(model == "fast", rng.exponential(200.0, n), rng.exponential(1000.0, n))
    ttft = np.where(model == "fast", rng.exponential(0.2, n), np.nan)
    table = spans(n, times, seed=seed, request_model=model, duration_ms=duration, ttft_s=ttft,
                  input_tokens=rng.integers(0, 8000, n))
    old = spans(100, [int((NOW - dt.timedelta(days=3)).timestamp() * 1e6)] * 100, duration_ms=np.full(100, 1e6))
    write_lake(lake_dir, [table, old])
    return model, duration, ttft


def test_quantiles_equal_numpy_linear_and_match_distribution(lake_dir, snapshot):
    model, duration, ttft = _two_models(lake_dir)
    frame = latency_summary(snapshot(), H24, ["request_model"]).set_index("request_model")
    for name in ("fast", "slow"):
        d = duration[model == name]
        assert frame.loc[name, "count"] == len(d)  # the 3-day-old outliers are outside the window
        for q in (50, 95, 99):
            assert frame.loc[name, f"duration_ms_p{q}"] == pytest.approx(np.percentile(d, q), rel=1e-9)
        assert frame.loc[name, "duration_ms_mean"] == pytest.approx(d.mean())
    scale = 200.0
    assert frame.loc["fast", "duration_ms_p50"] == pytest.approx(stats.expon.ppf(0.5, scale=scale), rel=0.1)
    assert frame.loc["fast", "ttft_s_p95"] == pytest.approx(np.nanpercentile(ttft[model == "fast"], 95))
    assert frame.loc["slow", "ttft_count"] == 0
    assert frame.index[0] == "slow"  # slowest p99 first


def test_input_bucket_and_timeseries(lake_dir, snapshot):
    _, duration, _ = _two_models(lake_dir)
    snap = snapshot()
    by_bucket = latency_summary(snap, H24, ["input_bucket"])
    assert set(by_bucket["input_bucket"]) == {"0-1k", "1k-4k", "4k-16k"}
    assert by_bucket["count"].sum() == len(duration)
    series = latency_timeseries(snap, H24, dt.timedelta(hours=1))
    assert len(series) == 24 and (series["count"] == 200).all()
    assert str(series["bucket"].dt.tz) == "UTC"


def test_slo_breach_and_ok(lake_dir, snapshot):
    _two_models(lake_dir)
    slos = [SLO("fast-ttft", "ttft_p99", 2.0, filters={"request_model": "fast"}),
            SLO("slow-p99", "duration_p99", 1.0, filters={"request_model": "slow"}),
            SLO("nobody", "ttft_p99", 1.0, filters={"request_model": "absent"})]
    frame = slo_status(snapshot(), slos, NOW).set_index("slo")
    assert frame.loc["fast-ttft", "status"] == "ok"  # exp(0.2) p99 ≈ 0.92 s
    assert frame.loc["slow-p99", "status"] == "breach"  # exp(1 s) p99 ≈ 4.6 s
    assert frame.loc["slow-p99", "value"] == pytest.approx(stats.expon.ppf(0.99, scale=1.0), rel=0.15)
    assert frame.loc["nobody", "status"] == "no_data"


def test_config_parses_slo_and_budget_tables():
    config = load_config({"slo": [{"name": "a", "metric": "ttft_p99", "max": 2, "request_model": "gpt-4o"}],
                          "budgets": {"chat": {"period": "month", "soft_usd": 5, "hard_usd": 10,
                                               "feature": "chat"}},
                          "anomalies": {"k": 3}, "alerts": {"webhook_format": "slack"}})
    assert config.slos[0].filters == {"request_model": "gpt-4o"}
    assert config.budgets[0].name == "chat" and config.budgets[0].filters == {"feature": "chat"}
    assert config.anomalies.k == 3 and config.alerts.webhook_format == "slack"
    with pytest.raises(ValueError):
        load_config({"slo": [{"metric": "p42", "max": 1}]})


def test_cost_totals_per_group_hour_and_failed(lake_dir, snapshot):
    rng = np.random.default_rng(5)
    n = 24 * 100
    times = hourly_times(NOW - dt.timedelta(hours=24), 24, 100, rng)
    feature = rng.choice(["search", "chat", "summary"], n)
    cost = rng.uniform(0.0, 0.02, n)
    cost[::50] = np.nan  # unknown price: not counted as zero
    status = np.where(rng.random(n) < 0.1, "ERROR", "UNSET")
    table = spans(n, times, feature=feature, cost_usd=cost, status_code=status,
                  input_tokens=np.full(n, 900), output_tokens=np.full(n, 100), user_id=rng.choice(["u1", "u2"], n),
                  tag_team=None)
    write_lake(lake_dir, [table])
    snap = snapshot()
    frame = cost_summary(snap, H24, ["feature"]).set_index("feature")
    for name in ("search", "chat", "summary"):
        sel = feature == name
        assert frame.loc[name, "cost_usd"] == pytest.approx(np.nansum(cost[sel]))
        assert frame.loc[name, "priced_count"] == np.sum(sel & ~np.isnan(cost))
        assert frame.loc[name, "cost_per_request_p99"] == pytest.approx(np.nanpercentile(cost[sel], 99))
        assert frame.loc[name, "usd_per_1k_tokens"] == pytest.approx(np.nansum(cost[sel]) / (sel.sum() * 1000) * 1000)
        failed = sel & (status == "ERROR")
        assert frame.loc[name, "failed_cost_usd"] == pytest.approx(np.nansum(cost[failed]))
    hourly = cost_timeseries(snap, H24, dt.timedelta(hours=1))
    assert len(hourly) == 24 and hourly["cost_usd"].sum() == pytest.approx(np.nansum(cost))
    daily = cost_timeseries(snap, H24, dt.timedelta(days=1), ["feature"])
    assert daily["cost_usd"].sum() == pytest.approx(np.nansum(cost))
    top = top_spenders(snap, H24, "user_id", limit=1)
    best = max(("u1", "u2"), key=lambda u: np.nansum(cost[table.column("user_id").to_numpy(False) == u]))
    assert top.loc[0, "value"] == best and 0.4 < top.loc[0, "share"] < 0.6
    assert failed_call_cost(snap, H24, ["provider"])["count"].sum() == np.sum(status == "ERROR")


def test_cost_by_tag_from_attributes(lake_dir, snapshot):
    attrs = [[("spanlake.tag.team", "red" if i % 4 else "blue")] for i in range(40)]
    table = spans(40, NOW - dt.timedelta(hours=1), cost_usd=np.full(40, 0.5), attributes=attrs)
    write_lake(lake_dir, [table])
    frame = cost_summary(snapshot(), H24, ["tag:team"]).set_index("tag:team")
    assert frame.loc["red", "cost_usd"] == pytest.approx(15.0)
    assert frame.loc["blue", "cost_usd"] == pytest.approx(5.0)
    with pytest.raises(ValueError):
        cost_summary(snapshot(), H24, ["no_such_column; drop table spans"])
