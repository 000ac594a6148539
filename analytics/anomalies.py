"""Anomalies: each hourly series against its rolling baseline (mean ± kσ), plus a multi-metric detector.

Series: request volume, error rate, cost per request, cost per hour, p99 latency, TTFT p99, tokens per
request and output length, per feature or per model. A bucket is flagged only with ``min_history``
earlier buckets of baseline and at least ``min_count`` calls (a group of three never alarms). σ has a
floor of 5 % of the mean (and 1 point of error rate) so flat series don't flag rounding noise.
The multi-metric detector is scikit-learn's IsolationForest, fitted per feature on its history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from spanlake.analytics.config import AnomalyConfig
from spanlake.analytics.lake import Lake, as_lake, to_frame
from spanlake.analytics.latency import time_bucket
from spanlake.analytics.window import Window, floor_time

HOUR = dt.timedelta(hours=1)
DEFAULT_CONFIG = AnomalyConfig()
REL_SIGMA_FLOOR = 0.05
COLUMNS = ["bucket", "metric", "dimension", "group", "value", "count", "baseline_mean", "baseline_std", "z",
           "direction", "anomaly"]


@dataclass(frozen=True)
class Series:
    """One monitored metric: which hourly aggregate, per which dimension, and which direction is bad."""

    metric: str
    dimension: str
    directions: tuple[str, ...] = ("up",)
    abs_sigma_floor: float = 0.0


SERIES: tuple[Series, ...] = (
    Series("volume", "feature", ("up", "down")),
    Series("error_rate", "request_model", ("up",), 0.01),
    Series("cost_per_request", "feature"),
    Series("cost_per_hour", "feature"),
    Series("latency_p99_ms", "request_model"),
    Series("ttft_p99_s", "request_model"),
    Series("tokens_per_request", "request_model", ("up", "down")),
    Series("output_tokens_mean", "request_model", ("up", "down")),
)
MULTI_METRICS = ("volume", "error_rate", "latency_p99_ms", "cost_per_request", "tokens_per_request")


def hourly_metrics_expr(lake: Lake, window: Window, dimension: str) -> ir.Table:
    """Every monitored aggregate per hour and value of ``dimension`` (the portable definition)."""
    t = lake.spans(window)
    failed = lake.failed(t)
    tokens = t.total_tokens.coalesce(t.input_tokens.fill_null(0) + t.output_tokens.fill_null(0))
    key = lake.dimension(t, dimension).name("group")
    return t.group_by([time_bucket(t, HOUR).name("bucket"), key]).aggregate(
        count=t.count(), volume=t.count().cast("float64"), error_rate=failed.mean(),
        cost_per_request=t.cost_usd.mean(), cost_per_hour=t.cost_usd.sum(),
        latency_p99_ms=t.duration_ms.quantile(0.99), ttft_p99_s=t.ttft_s.quantile(0.99),
        ttft_count=t.ttft_s.count(), tokens_per_request=tokens.mean(), output_tokens_mean=t.output_tokens.mean())


def _complete_grid(frame: pd.DataFrame, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """Every (hour, group) pair from the group's first call to ``end``: quiet hours get volume 0.

    Hours before a group first appeared are left out, so a new feature is not "up" against zeros.
    """
    hours = pd.date_range(start, end, freq="h", inclusive="left", tz="UTC")
    frame = frame.dropna(subset=["group"])
    if frame.empty:
        return frame.reset_index(drop=True)
    grid = pd.MultiIndex.from_product([hours, frame["group"].unique()], names=["bucket", "group"])
    first = frame.groupby("group")["bucket"].min().rename("_first")
    frame = frame.set_index(["bucket", "group"]).reindex(grid).reset_index()
    # A merge, not Series.map: map coerces the datetimes through float when some groups are missing.
    frame = frame.merge(first, left_on="group", right_index=True, how="left")
    frame = frame[frame["bucket"] >= frame["_first"]].drop(columns="_first")
    frame[["count", "volume"]] = frame[["count", "volume"]].fillna(0)
    return frame.reset_index(drop=True)


def _score_series(frame: pd.DataFrame, series: Series, config: AnomalyConfig) -> pd.DataFrame:
    """Rolling baseline of earlier buckets (only those with enough calls), z-score and flag per bucket."""
    value = frame[series.metric].astype(float)
    count = frame["ttft_count"] if series.metric == "ttft_p99_s" else frame["count"]
    enough = count >= config.min_count
    usable = value.where(enough) if series.metric != "volume" else value
    history = int(config.history / HOUR)
    grouped = usable.groupby(frame["group"])
    mean = grouped.transform(lambda s: s.rolling(history, min_periods=config.min_history).mean().shift(1))
    std = grouped.transform(lambda s: s.rolling(history, min_periods=config.min_history).std().shift(1))
    sigma = np.maximum(std.fillna(0), np.maximum(REL_SIGMA_FLOOR * mean.abs(), series.abs_sigma_floor))
    z = (value - mean) / sigma.where(sigma > 0)
    direction = np.where(z > 0, "up", "down")
    judged = (enough | ((series.metric == "volume") & (mean >= config.min_count))) & mean.notna()
    flagged = judged & (z.abs() > config.k) & pd.Series(direction, index=frame.index).isin(series.directions)
    return pd.DataFrame({"bucket": frame["bucket"], "metric": series.metric, "dimension": series.dimension,
                         "group": frame["group"].astype(str), "value": value, "count": count,
                         "baseline_mean": mean, "baseline_std": std, "z": z, "direction": direction,
                         "anomaly": flagged.astype(bool)})


def detect_anomalies(source: Any, window: Window, config: AnomalyConfig = DEFAULT_CONFIG,
                     series: Sequence[Series] = SERIES, only_flagged: bool = True) -> pd.DataFrame:
    """Score every complete hour in ``window`` against the ``config.history`` before it."""
    lake = as_lake(source)
    end = floor_time(window.end, HOUR)  # the running hour is incomplete: never judge it
    start = floor_time(window.start, HOUR)
    if end <= start:
        return pd.DataFrame(columns=COLUMNS)
    full = Window(start - config.history, end)
    frames = {dim: _complete_grid(to_frame(hourly_metrics_expr(lake, full, dim)), full.start, full.end)
              for dim in sorted({s.dimension for s in series})}
    scored = [_score_series(frames[s.dimension], s, config) for s in series if len(frames[s.dimension])]
    if not scored:
        return pd.DataFrame(columns=COLUMNS)
    result = pd.concat(scored, ignore_index=True)
    result = result[result["bucket"] >= pd.Timestamp(start)]
    if only_flagged:
        result = result[result["anomaly"]]
    return result.sort_values(["bucket", "metric", "group"], ignore_index=True)[COLUMNS]


def multi_metric_outliers(source: Any, window: Window, config: AnomalyConfig = DEFAULT_CONFIG,
                          dimension: str = "feature", seed: int = 0) -> pd.DataFrame:
    """Hours in ``window`` whose combination of metrics is unlike the group's history (IsolationForest).

    Catches joint shifts no single series flags (say, volume and tokens both slightly up while
    errors creep). A bucket is flagged when its anomaly score is below every training bucket's.
    """
    lake = as_lake(source)
    end, start = floor_time(window.end, HOUR), floor_time(window.start, HOUR)
    full = Window(start - config.history, end)
    frame = _complete_grid(to_frame(hourly_metrics_expr(lake, full, dimension)), full.start, full.end)
    rows = []
    for group, data in frame.groupby("group"):
        data = data[data["count"] >= config.min_count]
        train = data[data["bucket"] < pd.Timestamp(start)]
        test = data[data["bucket"] >= pd.Timestamp(start)]
        if len(train) < config.min_history or test.empty:
            continue
        features = list(MULTI_METRICS)
        x_train = train[features].astype(float).fillna(0.0).to_numpy()
        x_test = test[features].astype(float).fillna(0.0).to_numpy()
        forest = IsolationForest(n_estimators=200, random_state=seed).fit(x_train)
        threshold = forest.score_samples(x_train).min()
        scores = forest.score_samples(x_test)
        mu, sd = x_train.mean(axis=0), x_train.std(axis=0)
        for bucket, score, x in zip(test["bucket"], scores, x_test):
            if score < threshold:
                z = (x - mu) / np.where(sd > 0, sd, np.maximum(np.abs(mu) * REL_SIGMA_FLOOR, 1e-9))
                top = np.argsort(-np.abs(z))[:2]
                rows.append({"bucket": bucket, "dimension": dimension, "group": str(group), "score": float(score),
                             "threshold": float(threshold),
                             "drivers": ", ".join(f"{features[i]} z={z[i]:+.1f}" for i in top)})
    return pd.DataFrame(rows, columns=["bucket", "dimension", "group", "score", "threshold", "drivers"])
