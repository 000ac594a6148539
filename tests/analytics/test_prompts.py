"""Prompt-version verdicts: roll back on a real regression, promote on parity or gains, watch when thin."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from scipy import stats as sps
from span_factory import NOW, eval_logs, spans, write_lake
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
