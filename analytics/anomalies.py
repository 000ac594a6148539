"""Anomalies: each series against its rolling baseline (mean ± kσ), plus a multi-metric detector.

Hourly series: request volume, error rate, cost per request, cost per hour, p99 latency, TTFT p99,
tokens per request and output length, per feature or per model (cost series also per configured tag).
Daily series: cost per day and cost per request per day, per feature and tag. Buckets are anchored
at the window's end, so the last bucket judged always ends there. A group too quiet for hourly
buckets (median below ``min_count`` calls an hour) is pooled into 2–12 h buckets instead of being
skipped; a bucket is judged only with enough earlier buckets of baseline and ``min_count`` calls.
Flagged buckets are left out of the baseline (a spike that lasts does not become its own baseline).
σ has a floor of 5 % of the mean (and 1 point of error rate) so flat series don't flag rounding noise.
Every flagged row names the feature whose series moved and what moved with it (model, prompt version).
The multi-metric detector is scikit-learn's IsolationForest, fitted per feature on its history.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import operator
from collections.abc import Mapping, Sequence
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
DAY_HOURS = 24
DEFAULT_CONFIG = AnomalyConfig()
REL_SIGMA_FLOOR = 0.05
POOL_HOURS = (2, 3, 4, 6, 8, 12)
"""Bucket widths a sparse group is pooled into (the smallest that reaches ``min_count`` calls)."""
DAILY_HISTORY = dt.timedelta(days=7)
DAILY_MIN_HISTORY = 5
MIN_POOLED_HISTORY = 3
MASK_PASSES = 3
MOVED_SHARE = 0.3
"""A model or prompt version "moved with" a series when its share of the group's calls rose this much."""
COLUMNS = ["bucket", "metric", "dimension", "group", "value", "count", "baseline_mean", "baseline_std", "z",
           "direction", "anomaly", "bucket_hours", "feature", "moved_with"]
SUMS = ("count", "cost_sum", "cost_count", "errors", "tokens_sum", "tokens_count", "out_sum", "out_count",
        "duration_sum", "ttft_count")


@dataclass(frozen=True)
class Series:
    """One monitored metric: which aggregate, per which dimension, bucket size, and which direction is bad."""

    metric: str
    dimension: str
    directions: tuple[str, ...] = ("up",)
    abs_sigma_floor: float = 0.0
    bucket: str = "hour"  # "hour" (pooled into longer buckets when sparse) or "day"


SERIES: tuple[Series, ...] = (
    Series("volume", "feature", ("up", "down")),
    Series("error_rate", "request_model", ("up",), 0.01),
    Series("cost_per_request", "feature"),
    Series("cost_per_hour", "feature"),
    Series("latency_p99_ms", "request_model"),
    Series("ttft_p99_s", "request_model"),
    Series("tokens_per_request", "request_model", ("up", "down")),
    Series("output_tokens_mean", "request_model", ("up", "down")),
    Series("cost_per_day", "feature", bucket="day"),
    Series("cost_per_request_day", "feature", bucket="day"),
)
TAG_SERIES = ("cost_per_request", "cost_per_hour", "cost_per_day", "cost_per_request_day")
"""The cost series repeated for each configured tag (``[anomalies] tags = [...]``)."""
MULTI_METRICS = ("volume", "error_rate", "latency_p99_ms", "cost_per_request", "tokens_per_request")
SOURCE_OF = {"volume": "count", "error_rate": "errors", "cost_per_request": "cost_sum", "cost_per_hour": "cost_sum",
             "cost_per_day": "cost_sum", "cost_per_request_day": "cost_sum", "latency_p99_ms": "duration_sum",
             "ttft_p99_s": "duration_sum", "tokens_per_request": "tokens_sum", "output_tokens_mean": "out_sum"}
"""The additive sum whose per-feature share explains a move of each metric (p99s: summed duration)."""


def series_for(config: AnomalyConfig, series: Sequence[Series] = SERIES) -> tuple[Series, ...]:
    """``series`` plus the cost series per configured tag."""
    extra = tuple(Series(s.metric, f"tag:{tag}", s.directions, s.abs_sigma_floor, s.bucket)
                  for tag in config.tags for s in series if s.metric in TAG_SERIES and s.dimension == "feature")
    return tuple(series) + extra


def hourly_metrics_expr(lake: Lake, window: Window, dimension: str) -> ir.Table:
    """Every monitored aggregate per hour and value of ``dimension`` (the portable definition).

    The additive sums (``cost_sum``, ``errors`` …) let sparse hours be pooled into longer buckets.
    """
    t = lake.spans(window)
    failed = lake.failed(t)
    tokens = t.total_tokens.coalesce(t.input_tokens.fill_null(0) + t.output_tokens.fill_null(0))
    key = lake.dimension(t, dimension).name("group")
    return t.group_by([time_bucket(t, HOUR).name("bucket"), key]).aggregate(
        count=t.count(), volume=t.count().cast("float64"), error_rate=failed.mean(),
        cost_per_request=t.cost_usd.mean(), cost_per_hour=t.cost_usd.sum(),
        latency_p99_ms=t.duration_ms.quantile(0.99), ttft_p99_s=t.ttft_s.quantile(0.99),
        ttft_count=t.ttft_s.count(), tokens_per_request=tokens.mean(), output_tokens_mean=t.output_tokens.mean(),
        cost_sum=t.cost_usd.sum(), cost_count=t.cost_usd.count(), errors=failed.cast("int64").sum(),
        tokens_sum=tokens.sum().cast("float64"), tokens_count=tokens.count(),
        out_sum=t.output_tokens.sum().cast("float64"), out_count=t.output_tokens.count(),
        duration_sum=t.duration_ms.sum())


def composition_expr(lake: Lake, window: Window, dimension: str | None,
                     groups: Mapping[str, Sequence[str]] | None = None) -> ir.Table:
    """Calls and sums per hour, feature, model and prompt version (and ``dimension`` value as ``group``),
    of the calls whose value of any dimension in ``groups`` is listed (for attribution)."""
    t = lake.spans(window)
    if groups:
        keep = [lake.dimension(t, d).cast("string").isin(list(v)) for d, v in groups.items()]
        t = t.filter(functools.reduce(operator.or_, keep))
    failed = lake.failed(t)
    tokens = t.total_tokens.coalesce(t.input_tokens.fill_null(0) + t.output_tokens.fill_null(0))
    keys = [time_bucket(t, HOUR).name("bucket"), t.feature.name("by_feature"), t.request_model.name("by_model"),
            t.prompt_name, t.prompt_version]
    if dimension is not None:
        keys.append(lake.dimension(t, dimension).name("group"))
    return t.group_by(keys).aggregate(
        count=t.count(), cost_sum=t.cost_usd.sum(), errors=failed.cast("int64").sum(),
        tokens_sum=tokens.sum().cast("float64"), out_sum=t.output_tokens.sum().cast("float64"),
        duration_sum=t.duration_ms.sum())


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
    filled = ["count", "volume", *[c for c in SUMS if c in frame.columns and c != "count"]]
    frame[filled] = frame[filled].fillna(0)
    return frame.reset_index(drop=True)


def pool_widths(frame: pd.DataFrame, min_count: int) -> pd.Series:
    """Hours per bucket for each group: 1 when its median hour has ``min_count`` calls, else the
    smallest pooled width that would (NaN: too quiet for any; the daily series still judge it)."""
    median = frame.groupby("group")["count"].median()
    width = pd.Series(np.nan, index=median.index)
    for hours in (1, *POOL_HOURS)[::-1]:
        width[median * hours >= min_count] = hours
    return width


def _pooled(frame: pd.DataFrame, hours: int, end: dt.datetime) -> pd.DataFrame:
    """Hourly rows summed into ``hours``-wide buckets ending at ``end``; metrics recomputed from the sums.

    p99s cannot be pooled from hourly rows: for pooled buckets they are NaN (not judged).
    """
    if hours == 1:
        return frame.assign(bucket_hours=1)
    end_ts = pd.Timestamp(end)
    width = pd.Timedelta(hours=hours)
    index = (end_ts - frame["bucket"] - HOUR) // width
    data = frame.assign(bucket=end_ts - (index + 1) * width)
    data = data[data["bucket"] >= frame["bucket"].min()]  # a first bucket cut by the history start: dropped
    sums = data.groupby(["bucket", "group"], as_index=False)[list(SUMS)].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        sums["volume"] = sums["count"].astype(float)
        sums["error_rate"] = sums["errors"] / sums["count"].where(sums["count"] > 0)
        sums["cost_per_request"] = sums["cost_sum"] / sums["cost_count"].where(sums["cost_count"] > 0)
        sums["cost_per_hour"] = sums["cost_sum"] / hours
        sums["tokens_per_request"] = sums["tokens_sum"] / sums["tokens_count"].where(sums["tokens_count"] > 0)
        sums["output_tokens_mean"] = sums["out_sum"] / sums["out_count"].where(sums["out_count"] > 0)
    sums["latency_p99_ms"] = np.nan
    sums["ttft_p99_s"] = np.nan
    sums["bucket_hours"] = hours
    return sums.sort_values(["group", "bucket"], ignore_index=True)


def _daily(frame: pd.DataFrame, end: dt.datetime) -> pd.DataFrame:
    """24 h buckets ending at ``end``: cost per day and cost per request over the day."""
    days = _pooled(frame, DAY_HOURS, end)
    days["cost_per_day"] = days["cost_sum"]
    with np.errstate(divide="ignore", invalid="ignore"):
        days["cost_per_request_day"] = days["cost_sum"] / days["cost_count"].where(days["cost_count"] > 0)
    return days


def _rolling(values: pd.Series, groups: pd.Series, history: int, min_history: int) -> tuple[pd.Series, pd.Series]:
    grouped = values.groupby(groups)
    mean = grouped.transform(lambda s: s.rolling(history, min_periods=min_history).mean().shift(1))
    std = grouped.transform(lambda s: s.rolling(history, min_periods=min_history).std().shift(1))
    return mean, std


def _score_series(frame: pd.DataFrame, series: Series, config: AnomalyConfig, history: int,
                  min_history: int) -> pd.DataFrame:
    """Rolling baseline of earlier buckets (only those with enough calls, never flagged ones), z and flag.

    The baseline is rebuilt without the buckets it flagged (up to ``MASK_PASSES`` times), so a
    change that lasts keeps being judged against the time before it, not against itself.
    """
    value = frame[series.metric].astype(float)
    count = frame["ttft_count"] if series.metric == "ttft_p99_s" else frame["count"]
    enough = count >= config.min_count
    usable = value.where(enough) if series.metric != "volume" else value
    flagged = pd.Series(False, index=frame.index)
    for _ in range(MASK_PASSES):
        mean, std = _rolling(usable.where(~flagged), frame["group"], history, min_history)
        sigma = np.maximum(std.fillna(0), np.maximum(REL_SIGMA_FLOOR * mean.abs(), series.abs_sigma_floor))
        z = (value - mean) / sigma.where(sigma > 0)
        direction = pd.Series(np.where(z > 0, "up", "down"), index=frame.index)
        judged = (enough | ((series.metric == "volume") & (mean >= config.min_count))) & mean.notna()
        now_flagged = judged & (z.abs() > config.k) & direction.isin(series.directions)
        if now_flagged.equals(flagged):
            break
        flagged = flagged | now_flagged
    flagged = now_flagged
    return pd.DataFrame({"bucket": frame["bucket"], "metric": series.metric, "dimension": series.dimension,
                         "group": frame["group"].astype(str), "value": value, "count": count,
                         "baseline_mean": mean, "baseline_std": std, "z": z, "direction": direction,
                         "anomaly": flagged.astype(bool), "bucket_hours": frame["bucket_hours"]})


def _score_pooled(frame: pd.DataFrame, s: Series, config: AnomalyConfig, widths: pd.Series) -> list[pd.DataFrame]:
    """Score ``s`` for each pooled width over the groups pooled at that width."""
    out = []
    for hours, groups in widths.dropna().groupby(widths.dropna()):
        part = frame[frame["group"].isin(groups.index)]
        if part.empty:
            continue
        history = int(config.history / HOUR) // int(hours)
        min_history = config.min_history if hours == 1 else max(MIN_POOLED_HISTORY,
                                                                  math.ceil(config.min_history / hours))
        out.append(_score_series(part, s, config, max(history, min_history), min_history))
    return out


def detect_anomalies(source: Any, window: Window, config: AnomalyConfig = DEFAULT_CONFIG,
                     series: Sequence[Series] = SERIES, only_flagged: bool = True) -> pd.DataFrame:
    """Score every complete bucket in ``window`` against the ``config.history`` (≥ 7 days for daily) before it."""
    lake = as_lake(source)
    end = floor_time(window.end, HOUR)  # the running hour is incomplete: never judge it
    start = floor_time(window.start, HOUR)
    if end <= start:
        return pd.DataFrame(columns=COLUMNS)
    chosen = series_for(config, series)
    daily_back = max(config.history, DAILY_HISTORY) + dt.timedelta(days=1)
    full = Window(start - max(config.history, daily_back), end)
    scored = []
    for dim in sorted({s.dimension for s in chosen}):
        daily_too = any(s.bucket == "day" and s.dimension == dim for s in chosen)
        scan = full if daily_too else Window(start - config.history, end)  # read only the history it needs
        hourly = _complete_grid(to_frame(hourly_metrics_expr(lake, scan, dim)), scan.start, scan.end)
        if hourly.empty:
            continue
        hourly_part = hourly[hourly["bucket"] >= pd.Timestamp(start - config.history)]
        widths = pool_widths(hourly_part, config.min_count)
        pooled = pd.concat([_pooled(hourly_part[hourly_part["group"].isin(g.index)], int(h), end)
                            for h, g in widths.dropna().groupby(widths.dropna())] or [hourly_part.iloc[0:0]],
                           ignore_index=True)
        daily = _daily(hourly, end) if daily_too else hourly.iloc[0:0]
        for s in chosen:
            if s.dimension != dim:
                continue
            if s.bucket == "day":
                scored.append(_score_series(daily, s, config, int(DAILY_HISTORY / dt.timedelta(days=1)),
                                            DAILY_MIN_HISTORY))
            else:
                scored += _score_pooled(pooled, s, config, widths)
    scored = [f for f in scored if len(f)]
    if not scored:
        return pd.DataFrame(columns=COLUMNS)
    result = pd.concat(scored, ignore_index=True)
    result = result[result["bucket"] >= pd.Timestamp(start) - pd.to_timedelta(result["bucket_hours"] - 1, "h")]
    if only_flagged:
        result = result[result["anomaly"]]
    result = _attribute(lake, result, full, config.history)
    return result.sort_values(["bucket", "metric", "group"], ignore_index=True)[COLUMNS]


def _attribute(lake: Lake, result: pd.DataFrame, full: Window, history: dt.timedelta) -> pd.DataFrame:
    """Name, on each flagged row, the feature whose series moved and the model/prompt version that moved with it.

    For a feature (or tag) row the feature is the one whose share of the moved sum changed most
    (the group itself for a feature row); for a model row, the feature that explains the model's move.
    "Moved with": the model or prompt version whose share of the group's calls in the bucket rose by
    ``MOVED_SHARE`` or more against the baseline history.
    """
    result = result.assign(feature=None, moved_with=None)
    flagged = result[result["anomaly"]]
    if flagged.empty:
        return result
    since = max(flagged["bucket"].min().to_pydatetime() - history, full.start)  # the baseline they moved from
    shared = [d for d in ("feature", "request_model") if d in set(flagged["dimension"])]
    comps: dict[str, pd.DataFrame] = {}
    if shared:  # one scan for both: their groups are columns of the same aggregate
        wanted = {d: sorted(set(flagged.loc[flagged["dimension"] == d, "group"])) for d in shared}
        both = to_frame(composition_expr(lake, Window(since, full.end), None, wanted))
        for d in shared:
            comps[d] = both.assign(group=both["by_feature" if d == "feature" else "by_model"])
    for dim in flagged["dimension"].unique():
        of_dim = flagged[flagged["dimension"] == dim]
        comp = comps.get(dim)
        if comp is None:
            comp = to_frame(composition_expr(lake, Window(since, full.end), dim, {dim: sorted(set(of_dim["group"]))}))
        comp = comp.assign(group=comp["group"].astype(str))
        # prompt versions are named with their prompt (concatenated here, on the small aggregate)
        comp["prompt"] = (comp["prompt_name"].fillna("").astype(str) + "@" + comp["prompt_version"].astype(str)
                          ).where(comp["prompt_version"].notna())
        first = of_dim.groupby(["metric", "group"])["bucket"].transform("min")  # when this move began
        for idx, row in of_dim.iterrows():
            feature, moved = _explain(comp, row, first[idx], history)
            result.at[idx, "feature"] = feature
            result.at[idx, "moved_with"] = moved
    return result


def _explain(comp: pd.DataFrame, row: pd.Series, began: pd.Timestamp, history: dt.timedelta
             ) -> tuple[str | None, str | None]:
    """(feature, moved with) for one flagged bucket, against the ``history`` before its move ``began``."""
    rows = comp[comp["group"] == row["group"]]
    start = row["bucket"]
    inside = rows[(rows["bucket"] >= start) & (rows["bucket"] < start + pd.Timedelta(hours=int(row["bucket_hours"])))]
    before = rows[(rows["bucket"] < began) & (rows["bucket"] >= began - pd.Timedelta(history))]
    if inside.empty:
        return (row["group"] if row["dimension"] == "feature" else None), None
    source = SOURCE_OF.get(row["metric"], "count")
    sign = 1.0 if row["direction"] == "up" else -1.0
    if row["dimension"] == "feature":
        feature: str | None = str(row["group"])
    else:  # the feature whose per-call contribution to the moved sum changed most, in the direction of the move
        contrib = (inside.groupby("by_feature")[source].sum() / max(inside["count"].sum(), 1)).sub(
            before.groupby("by_feature")[source].sum() / max(before["count"].sum(), 1), fill_value=0.0) * sign
        feature = str(contrib.idxmax()) if len(contrib) and contrib.max() > 0 else None
    moved = []
    for key, label in (("by_model", "request_model"), ("prompt", "prompt_version")):
        share_in = inside.groupby(key, dropna=True)["count"].sum() / max(inside["count"].sum(), 1)
        share_before = before.groupby(key, dropna=True)["count"].sum() / max(before["count"].sum(), 1)
        rise = share_in.sub(share_before, fill_value=0.0)
        if len(rise) and rise.max() >= MOVED_SHARE:
            value = str(rise.idxmax())
            value = value.split("@", 1)[1] if label == "prompt_version" else value
            moved.append(f"{label}={value} ({share_before.get(rise.idxmax(), 0.0):.0%} → "
                         f"{share_in[rise.idxmax()]:.0%} of calls)")
    return feature, "; ".join(moved) or None


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
