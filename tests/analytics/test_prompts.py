"""Prompt-version verdicts: roll back on a real regression, promote on parity or gains, watch when thin."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats as sps
from span_factory import NOW, eval_logs, spans, write_lake
from spanlake.analytics.findings import from_prompts
from spanlake.analytics.prompts import PROMOTE, ROLLBACK, WATCH, compare_versions, prompt_verdicts
from spanlake.analytics.window import Window

DAY = Window.last("24h", NOW)


def _arm(version, n, rng, seed, latency=800.0, cost=0.01, error_rate=0.02, start_hours=20):
    start = int((NOW - dt.timedelta(hours=start_hours)).timestamp() * 1e6)
    times = start + rng.integers(0, int(start_hours * 3600e6) - 1, n)
    status = np.where(rng.random(n) < error_rate, "ERROR", "UNSET")
    return spans(n, times, seed=seed, prompt_name="answer", prompt_version=version,
                 duration_ms=rng.gamma(8, latency / 8, n), cost_usd=rng.normal(cost, cost / 10, n),
                 status_code=status)


def test_rollback_on_latency_regression(lake_dir, snapshot):
    rng = np.random.default_rng(1)
    control, candidate = _arm("v1", 600, rng, 1), _arm("v2", 600, rng, 2, latency=1040.0, start_hours=10)
    write_lake(lake_dir, [pa.concat_tables([control, candidate])])
    verdict = compare_versions(snapshot(), DAY, "answer", "v2", "v1")
    assert verdict.verdict == ROLLBACK
    assert any(r.startswith("worse: duration_ms") for r in verdict.reasons)
    row = verdict.metrics.set_index("metric").loc["duration_ms"]
    ref = sps.mannwhitneyu(candidate.column("duration_ms").to_numpy(), control.column("duration_ms").to_numpy(),
                           alternative="two-sided")
    assert row.p_value == ref.pvalue
    table = prompt_verdicts(snapshot(), DAY)  # newest version is the candidate by default
    assert list(table[["control", "candidate", "verdict"]].iloc[0]) == ["v1", "v2", ROLLBACK]


def test_promote_when_cheaper_and_nothing_worse(lake_dir, snapshot):
    rng = np.random.default_rng(2)
    write_lake(lake_dir, [pa.concat_tables([_arm("v1", 600, rng, 1), _arm("v2", 600, rng, 2, cost=0.008)])])
    verdict = compare_versions(snapshot(), DAY, "answer", "v2", "v1")
    assert verdict.verdict == PROMOTE and any("cost_usd" in r for r in verdict.reasons)


def test_keep_watching_when_thin(lake_dir, snapshot):
    rng = np.random.default_rng(3)
    write_lake(lake_dir, [pa.concat_tables([_arm("v1", 600, rng, 1), _arm("v2", 40, rng, 2)])])
    verdict = compare_versions(snapshot(), DAY, "answer", "v2", "v1")
    assert verdict.verdict == WATCH and "candidate n=40" in verdict.reasons[0]


def test_rollback_on_feedback_and_error_rate(lake_dir, snapshot):
    rng = np.random.default_rng(4)
    control, candidate = _arm("v1", 800, rng, 1), _arm("v2", 800, rng, 2, error_rate=0.08)
    logs = []
    for table, thumbs in ((control, 0.8), (candidate, 0.65)):
        ids, traces = table.column("span_id").to_pylist(), table.column("trace_id").to_pylist()
        times = table.column("start_time").cast(pa.int64()).to_numpy() + 1_000_000
        logs.append(eval_logs(ids, traces, (rng.random(len(ids)) < thumbs).astype(float), times, "user_feedback"))
    write_lake(lake_dir, [pa.concat_tables([control, candidate])], logs)
    verdict = compare_versions(snapshot(), DAY, "answer", "v2", "v1")
    assert verdict.verdict == ROLLBACK
    text = " ".join(verdict.reasons)
    assert "feedback_positive" in text and "error" in text


def _rollout(rng, change_hours, latency_new, n_per_hour=15, days=9, cost_new=0.01, shape=8.0):
    """v1 until ``change_hours`` before NOW, then v2 only (a plain rollout, no canary)."""
    hours = days * 24
    start = int((NOW - dt.timedelta(hours=hours)).timestamp() * 1e6)
    times = start + np.repeat(np.arange(hours), n_per_hour) * 3_600_000_000 + \
        rng.integers(0, 3_600_000_000, hours * n_per_hour)
    n = len(times)
    after = times >= int((NOW - dt.timedelta(hours=change_hours)).timestamp() * 1e6)
    latency = np.where(after, latency_new, 800.0)
    table = spans(n, times, seed=7, prompt_name="answer", prompt_version=np.where(after, "v2", "v1").astype(object),
                  duration_ms=rng.gamma(shape, latency / shape, n), cost_usd=rng.normal(np.where(after, cost_new, 0.01), 0.001, n))
    return table, times, after


def test_sequential_rollout_gets_a_before_after_verdict(lake_dir, snapshot):
    """v2 replaced v1 30 h ago (before the 24 h window, still running) and is 30 % slower: a sequential
    verdict against v1's 7 days before the change, labelled not randomised, on the same metrics."""
    rng = np.random.default_rng(6)
    table, times, after = _rollout(rng, change_hours=30, latency_new=1040.0)
    write_lake(lake_dir, [table])
    verdicts = prompt_verdicts(snapshot(), DAY)
    assert len(verdicts) == 1
    row = verdicts.iloc[0]
    assert (row.design, row.control, row.candidate, row.verdict) == ("sequential", "v1", "v2", ROLLBACK)
    assert row.reasons.startswith("before/after, not randomised") and "worse: duration_ms" in row.reasons
    change_us = int(row.changed_at.timestamp() * 1e6)
    before = (times >= change_us - int(7 * 86400e6)) & (times < change_us)
    assert row.n_control == before.sum() and row.n_candidate == after.sum()
    verdict = compare_versions(snapshot(), Window(row.changed_at, NOW), "answer", "v2", "v1",
                               control_window=Window(row.changed_at - dt.timedelta(days=7), row.changed_at))
    metrics = verdict.metrics.set_index("metric")
    duration = table.column("duration_ms").to_numpy()
    ref = sps.mannwhitneyu(duration[after], duration[before], alternative="two-sided")
    assert metrics.loc["duration_ms", "p_value"] == pytest.approx(ref.pvalue)
    assert {"cost_usd", "output_tokens", "error", "ttft_s"} <= set(metrics.index)


def test_sequential_cost_regression_finding_is_a_cost_spike(lake_dir, snapshot):
    """Only cost moved (latency spread kept narrow so it cannot cross the 5 % effect by chance)."""
    rng = np.random.default_rng(7)
    table, _, _ = _rollout(rng, change_hours=20, latency_new=800.0, cost_new=0.02, shape=400.0)
    write_lake(lake_dir, [table])
    verdicts = prompt_verdicts(snapshot(), DAY)
    alerts = from_prompts(verdicts)
    assert len(alerts) == 1 and alerts[0].category == "cost_spike"
    assert "not randomised" in alerts[0].title and "worse: cost_usd" in alerts[0].evidence


def test_side_by_side_versions_are_concurrent(lake_dir, snapshot):
    rng = np.random.default_rng(8)
    write_lake(lake_dir, [pa.concat_tables([_arm("v1", 600, rng, 1), _arm("v2", 600, rng, 2, start_hours=10)])])
    row = prompt_verdicts(snapshot(), DAY).iloc[0]
    assert row.design == "concurrent" and not row.reasons.startswith("before/after")
