"""Streams of traffic and the changes inside them: a prompt version or a model that replaced another.

A stream is the traffic of one (feature, prompt name, request model): it lives on across prompt
versions and answering models, so "v2 doubles output length" is v2 against the v1 it replaced, not
v2 against a v2 baseline that does not exist. A change is the newest value of ``prompt_version``
or ``response_model`` in a stream, first seen at most ``CHANGE_LOOKBACK`` before the window and
still answering in it (a change still in effect is still a finding). Its baseline is the stream's
``BASELINE`` of traffic before the change; ``design`` says whether the old value kept running next
to the new one (``concurrent``: a canary) or was replaced (``sequential``: before/after, not randomised).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
from spanlake.analytics.lake import Lake, as_lake, to_frame
from spanlake.analytics.window import Window

STREAM_KEYS = ("feature", "prompt_name", "request_model")
CHANGE_FIELDS = ("prompt_version", "response_model")
CHANGE_LOOKBACK = dt.timedelta(days=7)
BASELINE = dt.timedelta(days=7)
CONCURRENT_SHARE = 0.1
"""The old value still answering ≥ this share of calls after the change: the two ran side by side."""
MIN_PRIOR = dt.timedelta(hours=1)
"""A new value counts as a change only if the stream ran this long before it (not values born together)."""
CONCURRENT, SEQUENTIAL = "concurrent", "sequential"
COLUMNS = ["feature", "prompt_name", "request_model", "stream", "field", "old_value", "new_value", "changed_at",
           "design", "calls_before", "calls_after", "old_share_after"]


def stream_label(keys: Sequence[str], values: Sequence[Any]) -> str:
    """'feature=x, prompt_name=y, request_model=z' (absent keys left out), as drift groups are labelled."""
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values) if v is not None and not pd.isna(v)) or "all"


def _values(lake: Lake, window: Window, keys: Sequence[str], field: str) -> pd.DataFrame:
    t = lake.spans(window)
    t = t.filter(t[field].notnull())
    return to_frame(t.group_by([*lake.dimensions(t, list(keys)), t[field].name("value")])
                    .aggregate(calls=t.count(), first_seen=t.start_time.min(), last_seen=t.start_time.max()))


def stream_changes(source: Any, window: Window, keys: Sequence[str] = STREAM_KEYS,
                   fields: Sequence[str] = CHANGE_FIELDS) -> pd.DataFrame:
    """Every change still in effect in ``window``: per stream and field, the newest value against the
    busiest one before it. ``changed_at`` is the new value's first call."""
    lake = as_lake(source)
    scan = Window(window.start - CHANGE_LOOKBACK - BASELINE, window.end)
    rows = []
    for field in fields:
        values = _values(lake, scan, keys, field)
        if values.empty:
            continue
        for key, group in values.groupby(list(keys), dropna=False):
            key = key if isinstance(key, tuple) else (key,)
            if group["value"].nunique() < 2:
                continue
            group = group.sort_values("first_seen")
            new = group.iloc[-1]
            if new["first_seen"] < pd.Timestamp(window.start - CHANGE_LOOKBACK) or \
                    new["last_seen"] < pd.Timestamp(window.start):
                continue  # too old to be a change any more, or no longer running
            older = group.iloc[:-1]
            if new["first_seen"] - older["first_seen"].min() < pd.Timedelta(MIN_PRIOR):
                continue
            old = older.loc[older["calls"].idxmax()]
            rows.append({**dict(zip(keys, key)), "stream": stream_label(keys, key), "field": field,
                         "old_value": str(old["value"]), "new_value": str(new["value"]),
                         "changed_at": new["first_seen"]})
    frame = pd.DataFrame(rows, columns=[*keys, "stream", "field", "old_value", "new_value", "changed_at"])
    return _with_design(lake, window, keys, frame)


def _with_design(lake: Lake, window: Window, keys: Sequence[str], changes: pd.DataFrame) -> pd.DataFrame:
    """Calls before/after each change and whether the old value kept answering after it."""
    columns = [*keys, "stream", "field", "old_value", "new_value", "changed_at", "design", "calls_before",
               "calls_after", "old_share_after"]
    if changes.empty:
        return pd.DataFrame(columns=columns)
    out = []
    for r in changes.to_dict("records"):
        changed = r["changed_at"].to_pydatetime()
        before = _stream_counts(lake, Window(changed - BASELINE, changed), keys, r, r["field"])
        after = _stream_counts(lake, Window(changed, window.end), keys, r, r["field"])
        total_after = sum(after.values())
        old_share = after.get(r["old_value"], 0) / total_after if total_after else 0.0
        out.append({**r, "design": CONCURRENT if old_share >= CONCURRENT_SHARE else SEQUENTIAL,
                    "calls_before": sum(before.values()), "calls_after": total_after,
                    "old_share_after": old_share})
    return pd.DataFrame(out, columns=columns)


def stream_filter(lake: Lake, t: Any, keys: Sequence[str], row: dict[str, Any]) -> Any:
    """``t`` narrowed to the stream of a change row (absent key values match NULL)."""
    for k in keys:
        value, column = row.get(k), lake.dimension(t, k)
        t = t.filter(column.isnull() if value is None or pd.isna(value) else column == value)
    return t


def _stream_counts(lake: Lake, window: Window, keys: Sequence[str], row: dict[str, Any], field: str
                   ) -> dict[str, int]:
    t = stream_filter(lake, lake.spans(window), keys, row)
    frame = to_frame(t.group_by(t[field].name("value")).aggregate(calls=t.count()))
    return {str(v): int(c) for v, c in zip(frame["value"], frame["calls"])}
