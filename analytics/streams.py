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
from spanlake.analytics.latency import time_bucket
from spanlake.analytics.window import Window

HOUR = dt.timedelta(hours=1)
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


def _hourly_values(lake: Lake, window: Window, keys: Sequence[str], fields: Sequence[str]) -> pd.DataFrame:
    """Calls per stream, value of each field and hour, with each hour's first call (one scan for all fields)."""
    t = lake.spans(window)
    return to_frame(t.group_by([*lake.dimensions(t, list(keys)), *[t[f] for f in fields],
                                time_bucket(t, HOUR).name("hour")])
                    .aggregate(calls=t.count(), first_seen=t.start_time.min()))


def stream_changes(source: Any, window: Window, keys: Sequence[str] = STREAM_KEYS,
                   fields: Sequence[str] = CHANGE_FIELDS) -> pd.DataFrame:
    """Every change still in effect in ``window``: per stream and field, the newest value against the
    busiest one in the ``BASELINE`` before it. ``changed_at`` is the new value's first call; calls
    before and after the change, and the old value's share after it, decide the ``design``."""
    lake = as_lake(source)
    scan = Window(window.start - CHANGE_LOOKBACK - BASELINE, window.end)
    frames = []
    every = _hourly_values(lake, scan, keys, fields)
    for field in fields:
        known = every[every[field].notna()]
        hourly = known.groupby([*keys, field, "hour"], dropna=False, as_index=False, sort=False).agg(
            calls=("calls", "sum"), first_seen=("first_seen", "min")).rename(columns={field: "value"})
        changes = _changes_of(hourly, keys, window) if not hourly.empty else None
        if changes is not None and len(changes):
            frames.append(changes.assign(field=field))
    columns = [*keys, *COLUMNS[len(STREAM_KEYS):]]
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)[columns]
    out["changed_at"] = pd.to_datetime(out["changed_at"], utc=True)
    return out


def _changes_of(hourly: pd.DataFrame, keys: Sequence[str], window: Window) -> pd.DataFrame:
    """The changes in one field's hourly rows, every stream at once (vectorised: hundreds of streams)."""
    code = hourly.groupby(list(keys), dropna=False, sort=False).ngroup()
    firsts = hourly.groupby(code, sort=False)[list(keys)].first()  # one label per stream, not per row
    labels = {c: stream_label(keys, tuple(row)) for c, row in zip(firsts.index, firsts.itertuples(index=False))}
    hourly = hourly.assign(stream=code.map(labels), value=hourly["value"].astype(str))
    per_value = hourly.groupby(["stream", "value"], as_index=False).agg(
        first_seen=("first_seen", "min"), last_hour=("hour", "max"))
    stream_start = per_value.groupby("stream")["first_seen"].transform("min")
    newest = per_value.loc[per_value.groupby("stream")["first_seen"].idxmax()]
    newest = newest[(newest["stream"].map(per_value.groupby("stream").size()) >= 2)
                    & (newest["first_seen"] >= pd.Timestamp(window.start - CHANGE_LOOKBACK))
                    & (newest["last_hour"] >= pd.Timestamp(window.start) - HOUR)
                    & (newest["first_seen"] - stream_start.loc[newest.index] >= pd.Timedelta(MIN_PRIOR))]
    newest = newest.rename(columns={"value": "new_value", "first_seen": "changed_at"})[
        ["stream", "new_value", "changed_at"]]
    if newest.empty:
        return pd.DataFrame(columns=[*keys, *COLUMNS[len(STREAM_KEYS):]])
    rows = hourly.merge(newest, on="stream")
    change_hour = rows["changed_at"].dt.floor("h")
    rows["before"] = rows["calls"].where((rows["hour"] < change_hour)
                                         & (rows["hour"] >= (rows["changed_at"] - BASELINE).dt.floor("h")), 0)
    rows["after"] = rows["calls"].where(rows["hour"] >= change_hour, 0)
    counts = rows.groupby(["stream", "value"], as_index=False)[["before", "after"]].sum()
    old = counts[~counts.set_index(["stream", "value"]).index.isin(
        list(zip(newest["stream"], newest["new_value"])))]
    old = old.loc[old.groupby("stream")["before"].idxmax()].rename(
        columns={"value": "old_value", "after": "old_after"})[["stream", "old_value", "old_after"]]
    totals = counts.groupby("stream", as_index=False)[["before", "after"]].sum().rename(
        columns={"before": "calls_before", "after": "calls_after"})
    out = newest.merge(old, on="stream").merge(totals, on="stream")
    out["old_share_after"] = (out["old_after"] / out["calls_after"].where(out["calls_after"] > 0)).fillna(0.0)
    out["design"] = [CONCURRENT if share >= CONCURRENT_SHARE else SEQUENTIAL for share in out["old_share_after"]]
    first = hourly.drop_duplicates("stream").set_index("stream")[list(keys)]
    out = out.join(first, on="stream")
    return out[[*keys, "stream", "old_value", "new_value", "changed_at", "design", "calls_before",
                "calls_after", "old_share_after"]]
