"""Rolling mean ± kσ anomalies and the IsolationForest detector on series with injected incidents."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from span_factory import NOW, hourly_times, spans, write_lake
from spanlake.analytics.anomalies import detect_anomalies, multi_metric_outliers
from spanlake.analytics.config import AnomalyConfig
from spanlake.analytics.window import Window

DAY = Window.last("24h", NOW)
CONFIG = AnomalyConfig(k=2.0, min_history=24, min_count=20, history=dt.timedelta(days=3))


def _steady(lake_dir, hours=96, per_hour=60, spike_hour=None, tiny_spike=False, seed=4):
    """Steady traffic on feature 'chat'; optionally one hour (spike_hour hours before NOW) goes bad."""
    rng = np.random.default_rng(seed)
    n = hours * per_hour
    times = hourly_times(NOW - dt.timedelta(hours=hours), hours, per_hour, rng)
    cost = rng.normal(0.01, 0.001, n)
    duration = rng.normal(800, 80, n)
    status = np.array(["UNSET"] * n, dtype=object)
    tables = []
    if spike_hour is not None:
        bad = (times >= int((NOW - dt.timedelta(hours=spike_hour)).timestamp() * 1e6)) & \
              (times < int((NOW - dt.timedelta(hours=spike_hour - 1)).timestamp() * 1e6))
        cost[bad] *= 3
        duration[bad] *= 4
        status[bad & (rng.random(n) < 0.5)] = "ERROR"
    tables.append(spans(n, times, seed=seed, cost_usd=cost, duration_ms=duration, status_code=status,
                        request_model="m1", output_tokens=rng.integers(190, 210, n)))
    if tiny_spike:  # a 3-call feature with a huge cost: never flagged
        t = hourly_times(NOW - dt.timedelta(hours=hours), hours, 3, rng)
        c = np.full(len(t), 0.01)
        c[-3:] = 10.0
        tables.append(spans(len(t), t, feature="rare", cost_usd=c, request_model="m2"))
    write_lake(lake_dir, tables)


def test_spike_flagged_with_expected_series(lake_dir, snapshot):
    _steady(lake_dir, spike_hour=5, tiny_spike=True)
    found = detect_anomalies(snapshot(), DAY, CONFIG)
    spike_bucket = (NOW - dt.timedelta(hours=5)).replace(tzinfo=dt.timezone.utc)
    at_spike = found[found.bucket == spike_bucket]
    assert {"cost_per_request", "cost_per_hour", "latency_p99_ms", "error_rate"} <= set(at_spike.metric)
    assert set(found.bucket) == {spike_bucket}  # nothing else in 24 h of steady traffic
    assert "rare" not in set(found.group)
    cost = at_spike[at_spike.metric == "cost_per_request"].iloc[0]
    assert cost.z > 2 and cost.direction == "up" and cost.baseline_mean == pytest.approx(0.01, rel=0.05)


def test_no_flags_without_history(lake_dir, snapshot):
    _steady(lake_dir, hours=20, spike_hour=2)
    assert detect_anomalies(snapshot(), DAY, CONFIG).empty


def test_volume_drop_is_flagged(lake_dir, snapshot):
    rng = np.random.default_rng(9)
    hours = 96
    per_hour = np.full(hours, 100)
    per_hour[-3] = 10  # an outage-like drop three hours ago
    times = np.concatenate([hourly_times(NOW - dt.timedelta(hours=hours - h), 1, k, rng)
                            for h, k in enumerate(per_hour)])
    write_lake(lake_dir, [spans(len(times), times)])
    found = detect_anomalies(snapshot(), DAY, CONFIG)
    vol = found[found.metric == "volume"]
    assert len(vol) == 1 and vol.iloc[0].direction == "down" and vol.iloc[0].value == 10


def test_full_scores_and_isolation_forest(lake_dir, snapshot):
    _steady(lake_dir, spike_hour=5)
    snap = snapshot()
    every = detect_anomalies(snap, DAY, CONFIG, only_flagged=False)
    assert len(every[every.metric == "volume"]) == 24
    outliers = multi_metric_outliers(snap, DAY, CONFIG)
    assert len(outliers) >= 1
    assert outliers.iloc[0].bucket == NOW - dt.timedelta(hours=5)
    assert "latency_p99_ms" in outliers.iloc[0].drivers or "error_rate" in outliers.iloc[0].drivers
