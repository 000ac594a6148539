"""Rolling mean ± kσ anomalies and the IsolationForest detector on series with injected incidents."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from span_factory import NOW, hourly_times, spans, write_lake
from spanlake.analytics import anomalies
from spanlake.analytics.anomalies import detect_anomalies, multi_metric_outliers
from spanlake.analytics.config import AnomalyConfig
from spanlake.analytics.findings import alerts_from_results
from spanlake.analytics.jobs import RunOutcome, alert_results
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
    if tiny_spike:  # a 3-call-an-hour feature whose last 3 calls cost 1000x: judged in pooled 8 h buckets
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
    chat = found[found.feature == "chat"]
    assert set(chat.bucket) == {spike_bucket}  # nothing else in 24 h of steady traffic
    assert set(at_spike.feature) == {"chat"}  # the model's rows (error rate, p99) name the feature too
    rare = found[found.group == "rare"]  # 3 calls an hour: pooled into 8 h buckets (24 calls), not skipped
    assert set(rare.metric) == {"cost_per_request", "cost_per_hour"} and set(rare.bucket_hours) == {8}
    assert set(rare.bucket) == {NOW - dt.timedelta(hours=8)}  # the pooled bucket ends where the window does
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


def _feature(name, per_hour, hours, rng, cost=0.002, tokens=800, model="gpt-4o-mini", spike_hours=0,
             spike=1.0, prompt=("report", "v1", "v2")):
    """``per_hour`` calls an hour of one feature; its last ``spike_hours`` cost ``spike``x (more input tokens)
    and run the prompt's next version."""
    n = hours * per_hour
    times = hourly_times(NOW - dt.timedelta(hours=hours), hours, per_hour, rng)
    late = times >= int((NOW - dt.timedelta(hours=spike_hours)).timestamp() * 1e6) if spike_hours else \
        np.zeros(n, bool)
    factor = np.where(late, spike, 1.0)
    return spans(n, times, seed=int(rng.integers(1 << 30)), feature=name, request_model=model,
                 cost_usd=rng.normal(cost, cost / 10, n) * factor,
                 input_tokens=(rng.normal(tokens, tokens / 10, n) * factor).astype(int),
                 output_tokens=rng.integers(190, 210, n), prompt_name=prompt[0],
                 prompt_version=np.where(late, prompt[2], prompt[1]).astype(object))


def test_low_volume_feature_cost_spike_is_judged_and_named(lake_dir, snapshot):
    """A dozen calls an hour, per-request cost 6x for three hours: pooled into 2 h buckets and found for
    *that* feature, with the prompt version that moved with it; the model's tokens move names it too.
    The busy and the quiet calm features sharing the model stay silent."""
    rng = np.random.default_rng(21)
    hours = 9 * 24
    write_lake(lake_dir, [_feature("reports", 12, hours, rng, spike_hours=3, spike=6.0),
                          _feature("calm", 12, hours, rng, prompt=("calm", "v1", "v1")),
                          _feature("chat", 80, hours, rng, prompt=("chat", "v7", "v7"))])
    config = AnomalyConfig()  # 7 days of history, min_count 20
    found = detect_anomalies(snapshot(), DAY, config)
    assert found[found.group.isin(["calm", "chat"])].empty
    reports = found[(found.group == "reports") & (found.metric == "cost_per_request")]
    assert set(reports.bucket_hours) == {2}
    last = reports[reports.bucket == NOW - dt.timedelta(hours=2)].iloc[0]
    assert last.value / last.baseline_mean == pytest.approx(6.0, rel=0.1) and last["count"] == 24
    assert last.moved_with.startswith("prompt_version=v2 (0% → 100% of calls)")
    tokens = found[(found.metric == "tokens_per_request") & (found.dimension == "request_model")]
    assert len(tokens) and set(tokens.feature) == {"reports"}  # the model's move is named after the feature

    outcome = RunOutcome(results={"anomalies": found})
    titles = {a.key: a.title for a in alerts_from_results(alert_results(outcome, DAY))}
    assert "for feature=reports with prompt_version=v2" in titles["anomaly:cost_per_request:feature:reports"]
    assert "feature=reports" in titles["anomaly:tokens_per_request:request_model:gpt-4o-mini"]
    assert not [t for t in titles.values() if "calm" in t or "=chat" in t]


def test_daily_series_judge_a_feature_too_quiet_for_hours(lake_dir, snapshot):
    """One call an hour (12 in 12 h: never enough for an intra-day bucket): the per-day series still find
    a doubled cost per request over the last day, per feature and per configured tag."""
    rng = np.random.default_rng(22)
    hours = 10 * 24
    quiet = _feature("digest", 1, hours, rng, spike_hours=24, spike=2.0)
    quiet = quiet.set_column(quiet.schema.get_field_index("tags"), "tags",
                             pa.array([[("team", "growth")]] * len(quiet), quiet.schema.field("tags").type))
    write_lake(lake_dir, [quiet, _feature("calm", 1, hours, rng)])
    every = detect_anomalies(snapshot(), DAY, AnomalyConfig(tags=("team",)))
    model = every[every.dimension == "request_model"]  # the two features share the model: 2 calls an hour
    assert set(model.metric) == {"tokens_per_request"} and set(model.bucket_hours) == {12}
    assert set(model.feature) == {"digest"}
    found = every[every.dimension != "request_model"]
    assert set(found.metric) == {"cost_per_day", "cost_per_request_day"}
    assert set(found.group) == {"digest", "growth"} and set(found.bucket_hours) == {24}
    assert set(found.bucket) == {NOW - dt.timedelta(hours=24)}
    assert set(found.feature) == {"digest"}  # the tag's row names the feature inside it that moved
    per_request = found[(found.metric == "cost_per_request_day") & (found.group == "digest")].iloc[0]
    assert per_request.value / per_request.baseline_mean == pytest.approx(2.0, rel=0.1)


def test_a_spike_that_began_before_the_window_is_still_judged_while_it_lasts(lake_dir, snapshot, monkeypatch):
    """Cost per request doubled 60 h ago and still is: the last hour is judged against the week before the
    change (flagged buckets leave the baseline), not against a baseline that has absorbed the spike."""
    rng = np.random.default_rng(23)
    write_lake(lake_dir, [_feature("agent", 40, 10 * 24, rng, spike_hours=60, spike=2.0)])
    outcome = RunOutcome(results={"anomalies": detect_anomalies(snapshot(), DAY, AnomalyConfig())})
    keys = {a.key for a in alerts_from_results(alert_results(outcome, DAY))}
    assert "anomaly:cost_per_request:feature:agent" in keys
    last = outcome.results["anomalies"]
    last = last[(last.metric == "cost_per_request") & (last.bucket == NOW - dt.timedelta(hours=1))].iloc[0]
    assert last.baseline_mean == pytest.approx(0.002, rel=0.05)  # the week before the change
    monkeypatch.setattr(anomalies, "MASK_PASSES", 1)  # a baseline that keeps the spike: the last hour is "normal"
    plain = detect_anomalies(snapshot(), DAY, AnomalyConfig())
    assert plain[(plain.metric == "cost_per_request") & (plain.bucket == NOW - dt.timedelta(hours=1))].empty
