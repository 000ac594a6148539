"""Two-sample statistics shared by drift, anomaly and prompt-version analytics.

Tests come from scipy (Kolmogorov–Smirnov, Mann–Whitney); PSI, Cohen's d and the pooled
two-proportion z-test are short enough to write here and are checked against their definitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

PSI_EPS = 1e-4


def psi(baseline: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``baseline`` over baseline-quantile bins.

    Rules of thumb: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 major shift.
    """
    baseline, current = np.asarray(baseline, float), np.asarray(current, float)
    edges = np.unique(np.quantile(baseline, np.linspace(0, 1, bins + 1)[1:-1]))
    base_share = np.bincount(np.searchsorted(edges, baseline, side="right"), minlength=len(edges) + 1)
    cur_share = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1)
    b = np.maximum(base_share / len(baseline), PSI_EPS)
    c = np.maximum(cur_share / len(current), PSI_EPS)
    return float(np.sum((c - b) * np.log(c / b)))


def cohens_d(baseline: np.ndarray, current: np.ndarray) -> float:
    """Standardised mean difference (current − baseline) / pooled SD; 0 when both are constant."""
    a, b = np.asarray(baseline, float), np.asarray(current, float)
    pooled = ((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / max(len(a) + len(b) - 2, 1)
    return 0.0 if pooled <= 0 else float((b.mean() - a.mean()) / math.sqrt(pooled))


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float


def ks_test(baseline: np.ndarray, current: np.ndarray) -> TestResult:
    """Two-sample Kolmogorov–Smirnov test (scipy's exact/asymptotic choice)."""
    result = stats.ks_2samp(baseline, current)
    return TestResult(float(result.statistic), float(result.pvalue))


def mann_whitney(control: np.ndarray, candidate: np.ndarray) -> TestResult:
    """Two-sided Mann–Whitney U test; the statistic returned is the rank-biserial correlation.

    Positive means the candidate tends to be larger than the control.
    """
    result = stats.mannwhitneyu(candidate, control, alternative="two-sided")
    effect = 2.0 * float(result.statistic) / (len(control) * len(candidate)) - 1.0
    return TestResult(effect, float(result.pvalue))


def two_proportions(x1: int, n1: int, x2: int, n2: int) -> TestResult:
    """Pooled two-proportion z-test of p2 vs p1 (two-sided); statistic is z (positive: p2 larger)."""
    if min(n1, n2) == 0:
        return TestResult(0.0, 1.0)
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return TestResult(0.0, 1.0)
    z = (x2 / n2 - x1 / n1) / se
    return TestResult(z, float(2 * stats.norm.sf(abs(z))))
