"""Drift statistics and output/evaluation drift on known distributions, against scipy's results."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy import stats as sps
from span_factory import NOW, eval_logs, hourly_times, spans, write_lake
from spanlake.analytics import stats
from spanlake.analytics.drift import DriftParams, eval_drift, output_drift
from spanlake.analytics.window import Window

CURRENT = Window.last("24h", NOW)
BASELINE = CURRENT.before("7d")


def test_psi_matches_definition_and_is_zero_for_same_sample():
    rng = np.random.default_rng(0)
    base, cur = rng.normal(0, 1, 5000), rng.normal(0.5, 1, 5000)
    edges = np.quantile(base, np.linspace(0, 1, 11)[1:-1])
    b = np.histogram(base, np.r_[-np.inf, edges, np.inf])[0] / 5000
    c = np.histogram(cur, np.r_[-np.inf, edges, np.inf])[0] / 5000
    assert stats.psi(base, cur) == pytest.approx(np.sum((c - b) * np.log(c / b)), rel=1e-6)
    assert stats.psi(base, base) == pytest.approx(0.0, abs=1e-9)


def test_two_proportions_equals_chi_square_without_correction():
    result = stats.two_proportions(80, 400, 110, 420)
    chi2, p, _, _ = sps.chi2_contingency([[80, 320], [110, 310]], correction=False)
    assert result.statistic ** 2 == pytest.approx(chi2) and result.p_value == pytest.approx(p)
    assert result.statistic > 0


def test_mann_whitney_and_cohens_d_reference():
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 2, 300), rng.normal(11, 2, 300)
    result = stats.mann_whitney(a, b)
    assert result.p_value == pytest.approx(sps.mannwhitneyu(b, a, alternative="two-sided").pvalue)
    assert result.statistic > 0  # candidate larger
    pooled = np.sqrt((299 * a.var(ddof=1) + 299 * b.var(ddof=1)) / 598)
    assert stats.cohens_d(a, b) == pytest.approx((b.mean() - a.mean()) / pooled)


def _window_times(window: Window, n: int, rng) -> np.ndarray:
    start, span = int(window.start.timestamp() * 1e6), int(window.duration.total_seconds() * 1e6)
    return start + rng.integers(0, span, n)


def test_output_drift_flags_shift_only(lake_dir, snapshot):
    rng = np.random.default_rng(2)
    tables, samples = [], {}
    plan = {"stable": (200, 200, 2000, 600), "longer": (200, 260, 2000, 600), "tiny": (200, 400, 2000, 50)}
    for version, (lam_base, lam_cur, n_base, n_cur) in plan.items():
        base = rng.poisson(lam_base, n_base)
        cur = rng.poisson(lam_cur, n_cur)
        samples[version] = (base, cur)
        for window, values in ((BASELINE, base), (CURRENT, cur)):
            n = len(values)
            tables.append(spans(n, _window_times(window, n, rng), prompt_name="support", prompt_version=version,
                                output_tokens=values, output_chars=values * 4))
    write_lake(lake_dir, tables)
    frame = output_drift(snapshot(), CURRENT, BASELINE, params=DriftParams(min_n=100))
    tokens = frame[frame.metric == "output_tokens"].set_index("group")
    longer = tokens.loc["prompt_name=support, prompt_version=longer, request_model=gpt-4o-2024-08-06"]
    assert bool(longer.drift) and longer.change_pct == pytest.approx(30, abs=3)
    ref = sps.ks_2samp(*samples["longer"])
    assert longer.ks_d == pytest.approx(ref.statistic) and longer.ks_p == pytest.approx(ref.pvalue)
    stable = tokens.loc["prompt_name=support, prompt_version=stable, request_model=gpt-4o-2024-08-06"]
    assert not bool(stable.drift) and stable.psi < 0.05
    tiny = tokens.loc["prompt_name=support, prompt_version=tiny, request_model=gpt-4o-2024-08-06"]
    assert not bool(tiny.drift) and "fewer than" in tiny.reason
    assert frame.iloc[0].drift  # drifting groups first


def test_eval_and_feedback_drift(lake_dir, snapshot):
    rng = np.random.default_rng(3)
    span_tables, log_tables = [], []
    for window, mean, thumbs in ((BASELINE, 0.8, 0.8), (CURRENT, 0.6, 0.6)):
        n = 600
        times = _window_times(window, n, rng)
        table = spans(n, times, seed=int(mean * 10), prompt_version="v1")
        span_tables.append(table)
        ids, traces = table.column("span_id").to_pylist(), table.column("trace_id").to_pylist()
        log_times = times + 1_000_000
        log_tables.append(eval_logs(ids, traces, rng.normal(mean, 0.1, n), log_times, "relevance"))
        log_tables.append(eval_logs(ids, traces, (rng.random(n) < thumbs).astype(float), log_times,
                                    "user_feedback"))
    write_lake(lake_dir, span_tables, log_tables)
    frame = eval_drift(snapshot(), CURRENT, BASELINE).set_index("group")
    assert bool(frame.loc["evaluation_name=relevance", "drift"])
    assert frame.loc["evaluation_name=relevance", "mean_current"] == pytest.approx(0.6, abs=0.02)
    feedback = frame.loc["evaluation_name=user_feedback"]
    assert feedback.rate_baseline == pytest.approx(0.8, abs=0.05) and feedback.rate_p < 0.01
    by_version = eval_drift(snapshot(), CURRENT, BASELINE, ["evaluation_name", "prompt_version"])
    assert "evaluation_name=relevance, prompt_version=v1" in set(by_version["group"])


def _stream(rng, feature, version_lengths, change_hours, per_hour=20, days=9, model="gpt-4o-2024-08-06"):
    """One stream (feature, prompt 'support', model): the first version until ``change_hours`` before NOW,
    the second after it; output tokens Poisson with each version's mean."""
    hours = days * 24
    times = hourly_times(NOW - dt.timedelta(hours=hours), hours, per_hour, rng)
    after = times >= int((NOW - dt.timedelta(hours=change_hours)).timestamp() * 1e6)
    (v_old, lam_old), (v_new, lam_new) = version_lengths
    tokens = np.where(after, rng.poisson(lam_new, len(times)), rng.poisson(lam_old, len(times)))
    table = spans(len(times), times, seed=int(rng.integers(1 << 30)), feature=feature, prompt_name="support",
                  prompt_version=np.where(after, v_new, v_old).astype(object), request_model=model,
                  response_model=model, output_tokens=tokens, output_chars=tokens * 4)
    return table, times, after, tokens


def test_drift_follows_the_stream_across_a_version_that_replaced_its_predecessor(lake_dir, snapshot):
    """v2 replaced v1 30 h ago (before the 24 h window: still in effect) and doubled output length: compared
    with v1's 7 days before the change and attributed to the version change. A calm stream whose v4
    replaced v3 with the same outputs stays silent."""
    rng = np.random.default_rng(5)
    loud, times, after, tokens = _stream(rng, "support", (("v1", 200), ("v2", 400)), change_hours=30)
    calm, *_ = _stream(rng, "faq", (("v3", 150), ("v4", 150)), change_hours=10)
    write_lake(lake_dir, [loud, calm])
    frame = output_drift(snapshot(), CURRENT, BASELINE)
    streams = frame[frame.stream.notna() & (frame.metric == "output_tokens")].set_index("group")
    row = streams.loc["feature=support, prompt_name=support, request_model=gpt-4o-2024-08-06"]
    change = NOW - dt.timedelta(hours=30)
    assert bool(row.drift) and row.design == "sequential"
    assert row.attributed_to.startswith("prompt_version v1 → v2 at") and "since prompt_version v1 → v2" in row.reason
    assert abs(row.changed_at - change) < dt.timedelta(minutes=5)
    change_us = int(row.changed_at.timestamp() * 1e6)
    base = tokens[(times >= change_us - int(7 * 86400e6)) & (times < change_us)]
    ref = sps.ks_2samp(base, tokens[after])
    assert row.ks_p == pytest.approx(ref.pvalue) and row.mean_current / row.mean_baseline == pytest.approx(2, rel=0.05)
    faq = streams.loc["feature=faq, prompt_name=support, request_model=gpt-4o-2024-08-06"]
    assert not bool(faq.drift) and faq.attributed_to.startswith("prompt_version v3 → v4")
    # the per-version rows have no baseline for v2: without the stream row, nothing would be found
    version_rows = frame[frame.stream.isna() & frame.drift.astype(bool)]
    assert version_rows.empty


def test_stream_drift_is_attributed_to_a_model_change_under_the_same_version(lake_dir, snapshot):
    """Same prompt version, but the alias now answers with another model 20 h ago and outputs grow 50 %:
    the shift is attributed to the response model change, not to a version."""
    rng = np.random.default_rng(9)
    hours = 9 * 24
    times = hourly_times(NOW - dt.timedelta(hours=hours), hours, 20, rng)
    after = times >= int((NOW - dt.timedelta(hours=20)).timestamp() * 1e6)
    tokens = np.where(after, rng.poisson(300, len(times)), rng.poisson(200, len(times)))
    write_lake(lake_dir, [spans(len(times), times, seed=9, feature="support", prompt_name="support",
                                prompt_version="v5", request_model="gpt-4o",
                                response_model=np.where(after, "gpt-4o-2024-11-20", "gpt-4o-2024-08-06").astype(object),
                                output_tokens=tokens, output_chars=tokens * 4)])
    frame = output_drift(snapshot(), CURRENT, BASELINE)
    row = frame[frame.stream.notna() & (frame.metric == "output_tokens")].iloc[0]
    assert bool(row.drift) and row.group == "feature=support, prompt_name=support, request_model=gpt-4o"
    assert row.attributed_to.startswith("response_model gpt-4o-2024-08-06 → gpt-4o-2024-11-20 at")
    assert row.mean_current / row.mean_baseline == pytest.approx(1.5, rel=0.05)
