"""Output drift: has the distribution of output length (or an evaluation score) moved?

For each group (prompt name/version and model by default), the current window is compared with a
baseline window: two-sample KS test, PSI and effect size (Cohen's d, mean change). A group is
judged only when both windows have at least ``min_n`` values; drift needs significance *and* a
material shift (PSI), so huge samples don't flag trivial differences.

A new prompt version or answering model has no baseline of its own, so output drift also follows
each stream (feature, prompt name, model; see :mod:`streams`) across a change still in effect: the
new value since the change against the stream's 7 days before it, attributed to that change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import numpy as np
import pandas as pd
from spanlake.analytics import stats
from spanlake.analytics.lake import Lake, as_lake, to_frame
from spanlake.analytics.streams import BASELINE, STREAM_KEYS, stream_changes
from spanlake.analytics.window import Window
from spanlake.collector.storage import schema
from spanlake.instrumentation import semconv as sc

OUTPUT_GROUPS = ("prompt_name", "prompt_version", "request_model")
OUTPUT_METRICS = ("output_tokens", "output_chars")
EVAL_GROUPS = ("evaluation_name",)
COLUMNS = ["metric", "group", "n_baseline", "n_current", "mean_baseline", "mean_current", "change_pct",
           "ks_d", "ks_p", "psi", "cohens_d", "rate_baseline", "rate_current", "rate_p", "drift", "reason",
           "stream", "attributed_to", "changed_at", "design"]
COINCIDE = dt.timedelta(hours=1)
"""Two changes of one stream this close together are reported as one (a version shipped with a new model)."""


@dataclass(frozen=True)
class DriftParams:
    """Thresholds: significance level, minimum PSI for a material shift, minimum sample per window."""

    alpha: float = 0.01
    psi_threshold: float = 0.1
    min_n: int = 100
    max_sample: int = 20_000
    seed: int = 0


def compare(baseline: np.ndarray, current: np.ndarray, params: DriftParams) -> dict[str, Any]:
    """All drift statistics of one metric in one group (NaNs dropped; samples capped for speed)."""
    baseline, current = _clean(baseline, params), _clean(current, params)
    row: dict[str, Any] = {"n_baseline": len(baseline), "n_current": len(current)}
    if min(len(baseline), len(current)) < params.min_n:
        return {**row, "drift": False, "reason": f"fewer than {params.min_n} values in a window"}
    ks = stats.ks_test(baseline, current)
    mean_b, mean_c = float(baseline.mean()), float(current.mean())
    row.update(mean_baseline=mean_b, mean_current=mean_c,
               change_pct=(mean_c - mean_b) / abs(mean_b) * 100 if mean_b else None,
               ks_d=ks.statistic, ks_p=ks.p_value, psi=stats.psi(baseline, current),
               cohens_d=stats.cohens_d(baseline, current))
    drift = ks.p_value < params.alpha and row["psi"] >= params.psi_threshold
    row["drift"] = bool(drift)
    row["reason"] = (f"KS D={ks.statistic:.3f} p={ks.p_value:.2g}, PSI={row['psi']:.3f}, "
                     f"mean {mean_b:.4g} → {mean_c:.4g}") if drift else "no material shift"
    return row


def _clean(values: np.ndarray, params: DriftParams) -> np.ndarray:
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    if len(values) > params.max_sample:
        values = np.random.default_rng(params.seed).choice(values, params.max_sample, replace=False)
    return values


def _group_label(keys: Sequence[str], values: Any) -> str:
    values = values if isinstance(values, tuple) else (values,)
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values) if v is not None and not pd.isna(v)) or "all"


def _compare_frames(base: pd.DataFrame, cur: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str],
                    params: DriftParams, rate_of: str | None = None) -> pd.DataFrame:
    """Compare every group present in the current window, metric by metric."""
    rows = []
    base_groups = {k: g for k, g in base.groupby(list(keys), dropna=False)} if len(base) else {}
    for key, cur_group in cur.groupby(list(keys), dropna=False):
        base_group = base_groups.get(key, base.iloc[0:0])
        for metric in metrics:
            row = {"metric": metric, "group": _group_label(keys, key),
                   **compare(base_group[metric].to_numpy(float), cur_group[metric].to_numpy(float), params)}
            if rate_of == metric:
                row.update(_rate_compare(base_group[metric].to_numpy(float), cur_group[metric].to_numpy(float),
                                         params))
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _rate_compare(baseline: np.ndarray, current: np.ndarray, params: DriftParams) -> dict[str, Any]:
    """Positive-rate (score ≥ 0.5) comparison, for feedback-style scores (thumbs up = 1)."""
    b, c = baseline[~np.isnan(baseline)], current[~np.isnan(current)]
    if min(len(b), len(c)) < params.min_n:
        return {}
    test = stats.two_proportions(int((b >= 0.5).sum()), len(b), int((c >= 0.5).sum()), len(c))
    return {"rate_baseline": float((b >= 0.5).mean()), "rate_current": float((c >= 0.5).mean()),
            "rate_p": test.p_value}


def _output_values(lake: Lake, window: Window, keys: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    t = lake.spans(window)
    t = t.filter(t.operation.isin(["chat", "text_completion", "generate_content"]) | t.operation.isnull())
    cols = [*lake.dimensions(t, list(keys)), *[t[m].cast("float64").name(m) for m in metrics]]
    return to_frame(t.select(cols))


def output_drift(source: Any, current: Window, baseline: Window, group_by: Sequence[str] = OUTPUT_GROUPS,
                 metrics: Sequence[str] = OUTPUT_METRICS, params: DriftParams = DriftParams(),
                 streams: bool = True) -> pd.DataFrame:
    """Output tokens/characters drift per group, current vs baseline window, plus one row per metric and
    stream change still in effect (``streams``); drifting groups first."""
    lake = as_lake(source)
    base = _output_values(lake, baseline, group_by, metrics)
    cur = _output_values(lake, current, group_by, metrics)
    frame = _compare_frames(base, cur, group_by, metrics, params)
    if streams:
        frame = pd.concat([frame, stream_drift(lake, current, metrics, params)], ignore_index=True)
    return frame.sort_values(["drift", "psi"], ascending=[False, False], na_position="last", ignore_index=True)


def describe_change(change: Mapping[str, Any], others: Sequence[Mapping[str, Any]]) -> str:
    """'prompt_version v1 → v2 at <time>' plus any other change of the same stream within ``COINCIDE``."""
    text = f"{change['field']} {change['old_value']} → {change['new_value']} at {change['changed_at']:%Y-%m-%d %H:%M} UTC"
    near = [o for o in others if o["stream"] == change["stream"] and o["field"] != change["field"]
            and abs(o["changed_at"] - change["changed_at"]) <= COINCIDE]
    return text + "".join(f" with {o['field']} {o['old_value']} → {o['new_value']}" for o in near)


def stream_drift(source: Any, window: Window, metrics: Sequence[str] = OUTPUT_METRICS,
                 params: DriftParams = DriftParams()) -> pd.DataFrame:
    """Per stream change still in effect in ``window``: the new value's outputs since the change against the
    stream's ``BASELINE`` before it, attributed to the change (and any that coincide with it)."""
    lake = as_lake(source)
    changes = stream_changes(lake, window)
    changes = changes[[not _covered(c, changes) for c in changes.to_dict("records")]] if len(changes) else changes
    by_stream: dict[str, list[dict[str, Any]]] = {}
    for record in changes.to_dict("records"):
        by_stream.setdefault(record["stream"], []).append(record)
    rows = []
    for field, of_field in changes.groupby("field"):
        values = _stream_values(lake, window, of_field, str(field), metrics)
        # numpy slices per stream: pandas groupby over millions of rows costs seconds
        codes, streams = pd.factorize(values["_stream"].to_numpy("int64"))
        order = np.argsort(codes, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(streams)))])
        times = values["start_time"].to_numpy("datetime64[us]")[order]
        value_hash = values["value"].to_numpy("int64", na_value=0)[order]
        arrays = {m: values[m].to_numpy(float)[order] for m in metrics}
        position = {int(k): i for i, k in enumerate(streams)}
        for change in of_field.to_dict("records"):
            i = position.get(values.attrs["streams"].get(_stream_key(change), -1))
            lo, hi = (bounds[i], bounds[i + 1]) if i is not None else (0, 0)
            at = np.datetime64(change["changed_at"].tz_convert(None).to_datetime64(), "us")
            t = times[lo:hi]
            is_new = value_hash[lo:hi] == values.attrs["values"].get(str(change["new_value"]), 0)
            base = (t >= at - np.timedelta64(int(BASELINE.total_seconds()), "s")) & (t < at)
            cur = (t >= at) & is_new
            attributed = describe_change(change, by_stream.get(change["stream"], []))
            for metric in metrics:
                row = compare(arrays[metric][lo:hi][base], arrays[metric][lo:hi][cur], params)
                if row["drift"]:
                    row["reason"] = f"{row['reason']}; since {attributed}"
                rows.append({"metric": metric, "group": change["stream"], **row, "stream": change["stream"],
                             "attributed_to": attributed, "changed_at": change["changed_at"],
                             "design": change["design"]})
    return pd.DataFrame(rows, columns=COLUMNS)


def _covered(change: Mapping[str, Any], changes: pd.DataFrame) -> bool:
    """A model change that coincides with a version change of the same stream is reported with it."""
    if change["field"] == "prompt_version":
        return False
    return bool(((changes["stream"] == change["stream"]) & (changes["field"] == "prompt_version")
                 & ((changes["changed_at"] - change["changed_at"]).abs() <= pd.Timedelta(COINCIDE))).any())


_SEP = "\x1f"


def _stream_key(row: Mapping[str, Any]) -> str:
    return _SEP.join("" if row.get(k) is None or pd.isna(row.get(k)) else str(row[k]) for k in STREAM_KEYS)


def _stream_values(lake: Lake, window: Window, changes: pd.DataFrame, field: str, metrics: Sequence[str]
                   ) -> pd.DataFrame:
    """Outputs of every changed stream from the earliest baseline to the window's end, in one scan.

    Streams and values come back as 64-bit hashes (``_stream``, ``value``; the keys' hashes are in
    ``attrs``): millions of strings cost seconds to move and factorise.
    """
    scan = Window(changes["changed_at"].min().to_pydatetime() - BASELINE, window.end)
    t = lake.spans(scan)
    t = t.filter(t.operation.isin(["chat", "text_completion", "generate_content"]) | t.operation.isnull())
    key = _key_expr([lake.dimension(t, k) for k in STREAM_KEYS])
    streams = sorted({_stream_key(c) for c in changes.to_dict("records")})
    hashes = _hashes(lake, streams)
    values = _hashes(lake, sorted(set(changes["new_value"].astype(str))))
    t = t.mutate(_stream=key.hash(), value=t[field].cast("string").hash())
    frame = to_frame(t.filter(t._stream.isin(list(hashes.values())))
                     .select("_stream", t.start_time, "value", *[t[m].cast("float64").name(m) for m in metrics]))
    frame.attrs.update(streams=hashes, values=values)
    return frame


def _key_expr(parts: Sequence[Any]) -> Any:
    parts = [p.cast("string").fill_null("") for p in parts]
    key = parts[0]
    for part in parts[1:]:
        key = key + _SEP + part
    return key


def _hashes(lake: Lake, texts: Sequence[str]) -> dict[str, int]:
    """The same 64-bit hash the scan computes, for a few strings (one tiny query)."""
    if not texts:
        return {}
    one = lake.table(schema.SPANS).limit(1)
    listed = one.select(s=ibis.literal(list(texts), type="array<string>").unnest())
    frame = to_frame(listed.mutate(h=listed.s.hash()))
    return {str(a): int(b) for a, b in zip(frame["s"], frame["h"])}


def eval_scores(lake: Lake, window: Window, span_keys: Sequence[str]) -> pd.DataFrame:
    """Evaluation scores in ``window`` with their evaluation name (and span columns via span_id)."""
    logs = lake.logs(window, sc.EVENT_EVALUATION_RESULT)
    scores = logs.select(
        span_id=logs.span_id, evaluation_name=logs.attributes.get(sc.GEN_AI_EVALUATION_NAME),
        score=logs.attributes.get(sc.GEN_AI_EVALUATION_SCORE_VALUE).try_cast("float64"))
    if span_keys:
        spans = lake.spans(window.extend_back("1d"))
        spans = spans.select(spans.span_id, *lake.dimensions(spans, list(span_keys)))
        scores = scores.left_join(spans, "span_id").select(scores, *[spans[k] for k in span_keys])
    return to_frame(scores.filter(scores.score.notnull()))


def eval_drift(source: Any, current: Window, baseline: Window, group_by: Sequence[str] = EVAL_GROUPS,
               params: DriftParams = DriftParams()) -> pd.DataFrame:
    """Evaluation-score / feedback drift per evaluation name (and span columns such as prompt_version)."""
    lake = as_lake(source)
    span_keys = [k for k in group_by if k != "evaluation_name"]
    base = eval_scores(lake, baseline, span_keys)
    cur = eval_scores(lake, current, span_keys)
    frame = _compare_frames(base, cur, group_by, ["score"], params, rate_of="score")
    frame["metric"] = "evaluation_score"
    drift_rate = frame["rate_p"].fillna(1.0) < params.alpha
    frame["drift"] = frame["drift"] | drift_rate
    return frame.sort_values(["drift", "psi"], ascending=[False, False], na_position="last", ignore_index=True)




def parse_group_label(label: str) -> dict[str, str]:
    """The ``{key: value}`` of a drift row's ``group`` label ('k=v, k=v'; the inverse of how it is built)."""
    if label == "all":
        return {}
    return dict(part.split("=", 1) for part in label.split(", ") if "=" in part)


def output_histograms(source: Any, current: Window, baseline: Window, group: Mapping[str, str | None],
                      metric: str = "output_tokens", bins: int = 30) -> pd.DataFrame:
    """The two distributions a drift row compares, as shares per common bin (for drawing them overlaid).

    ``group`` maps each grouping dimension to its value (None: the value is absent). Bins span the
    pooled 0.5–99.5th percentiles, so one runaway answer does not squash the picture.
    """
    lake = as_lake(source)
    values = {name: _group_values(lake, w, group, metric) for name, w in (("baseline", baseline),
                                                                         ("current", current))}
    pooled = np.concatenate(list(values.values()))
    columns = ["window", "bin_start", "bin_end", "share", "n"]
    if len(pooled) == 0:
        return pd.DataFrame(columns=columns)
    low, high = np.quantile(pooled, [0.005, 0.995])
    edges = np.histogram_bin_edges(np.clip(pooled, low, high), bins=bins)
    rows = []
    for name, data in values.items():
        counts, _ = np.histogram(np.clip(data, low, high), bins=edges)
        share = counts / max(len(data), 1)
        rows += [{"window": name, "bin_start": edges[i], "bin_end": edges[i + 1], "share": float(share[i]),
                  "n": len(data)} for i in range(len(counts))]
    return pd.DataFrame(rows, columns=columns)


def _group_values(lake: Lake, window: Window, group: Mapping[str, str | None], metric: str) -> np.ndarray:
    t = lake.spans(window)
    t = t.filter(t.operation.isin(["chat", "text_completion", "generate_content"]) | t.operation.isnull())
    for name, value in group.items():
        key = lake.dimension(t, name)
        t = t.filter(key.isnull() if value is None else key == value)
    frame = to_frame(t.select(t[metric].cast("float64").name("value")))
    values = frame["value"].to_numpy(float)
    return values[~np.isnan(values)]


def eval_timeseries(source: Any, window: Window, bucket: dt.timedelta = dt.timedelta(hours=1)) -> pd.DataFrame:
    """Evaluation and feedback scores per time bucket and evaluation name: count, mean, positive rate (≥ 0.5)."""
    lake = as_lake(source)
    logs = lake.logs(window, sc.EVENT_EVALUATION_RESULT)
    seconds = int(bucket.total_seconds())
    scores = logs.select(
        bucket=(logs.time.epoch_seconds() // seconds * seconds).as_timestamp("s"),
        evaluation_name=logs.attributes.get(sc.GEN_AI_EVALUATION_NAME),
        score=logs.attributes.get(sc.GEN_AI_EVALUATION_SCORE_VALUE).try_cast("float64"))
    scores = scores.filter(scores.score.notnull())
    grouped = scores.group_by(["bucket", "evaluation_name"]).aggregate(
        count=scores.count(), mean_score=scores.score.mean(),
        positive_rate=(scores.score >= 0.5).cast("float64").mean())
    frame = to_frame(grouped)
    return frame.sort_values(["bucket", "evaluation_name"], ignore_index=True)
