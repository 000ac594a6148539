"""Model changes: silent provider updates and unpinned model aliases.

A response model or system fingerprint that changes while the request model stays the same is a
provider-side update the app never asked for: reported as a dated event. A request model without a
date or version in its name (``gpt-4o``, ``claude-sonnet-4-5``, ``*-latest``) is an alias the provider
can re-point at any time; production should pin versions, so those are listed as warnings.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from typing import Any

import pandas as pd
from spanlake.analytics.lake import as_lake, to_frame
from spanlake.analytics.latency import time_bucket
from spanlake.analytics.window import Window
from spanlake.instrumentation import semconv as sc

_PINNED = re.compile(
    r"(\d{4}-\d{2}-\d{2}"  # gpt-4o-2024-08-06
    r"|(?<!\d)\d{8}(?!\d)"  # claude-3-5-sonnet-20241022
    r"|-\d{3,4}(?:$|[-:@])"  # gpt-4-0613, gemini-1.5-pro-002
    r"|[-.:@]v\d+(?:[.:]\d+)*$"  # anthropic.claude-...-v2:0, model@v3
    r"|@\d+)")
_ALIAS_WORDS = re.compile(r"(latest|preview|exp(erimental)?)$", re.IGNORECASE)
FINGERPRINT = "fingerprint"
RESPONSE_MODEL = "response_model"
EVENT_COLUMNS = ["changed_at", "request_model", "field", "old_value", "new_value", "calls_since", "provider"]


def is_pinned(model: str) -> bool:
    """True when the model name carries a date or version that pins it."""
    return bool(_PINNED.search(model)) and not _ALIAS_WORDS.search(model)


def _first_seen(source: Any, window: Window) -> pd.DataFrame:
    """(request model, field, value) → first/last seen and calls, for response model and fingerprint."""
    lake = as_lake(source)
    t = lake.spans(window)
    t = t.filter(t.request_model.notnull())
    fingerprint = t.attributes.get(sc.GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT)
    frames = []
    for name, value in ((RESPONSE_MODEL, t.response_model), (FINGERPRINT, fingerprint)):
        sel = t.filter(value.notnull())
        grouped = sel.group_by(request_model=sel.request_model, value=value.name("value")).aggregate(
            first_seen=sel.start_time.min(), last_seen=sel.start_time.max(), calls=sel.count(),
            provider=sel.provider.max())
        frame = to_frame(grouped)
        frame["field"] = name
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def model_changes(source: Any, window: Window, min_calls: int = 5) -> pd.DataFrame:
    """Dated events where a request model's response model or fingerprint switched to a new value.

    The first value seen in the window is the incumbent; each later value with at least
    ``min_calls`` calls is a change away from whichever value was seen before it.
    """
    seen = _first_seen(source, window)
    events = []
    for (request_model, field), group in seen.groupby(["request_model", "field"]):
        group = group[group["calls"] >= min_calls].sort_values("first_seen")
        values = group.to_dict("records")
        for before, after in itertools.pairwise(values):
            events.append({"changed_at": after["first_seen"], "request_model": request_model, "field": field,
                           "old_value": before["value"], "new_value": after["value"],
                           "calls_since": int(after["calls"]), "provider": after["provider"]})
    frame = pd.DataFrame(events, columns=EVENT_COLUMNS)
    return frame.sort_values("changed_at", ignore_index=True)


def unpinned_models(source: Any, window: Window) -> pd.DataFrame:
    """Request models used without a pinned version, with their traffic and the versions they resolved to."""
    lake = as_lake(source)
    t = lake.spans(window)
    t = t.filter(t.request_model.notnull())
    grouped = t.group_by(request_model=t.request_model).aggregate(
        calls=t.count(), services=t.service_name.collect(distinct=True),
        resolved_to=t.response_model.collect(distinct=True), last_seen=t.start_time.max())
    frame = to_frame(grouped)
    frame = frame[~frame["request_model"].map(is_pinned)].copy()
    for col in ("services", "resolved_to"):
        frame[col] = frame[col].map(_join_distinct)
    frame["warning"] = "unpinned alias: pin a dated/versioned model in production"
    return frame.sort_values("calls", ascending=False, ignore_index=True)


def _join_distinct(values: Any) -> str:
    """A collected list as 'a, b'; collect() over only nulls yields NULL (None), not an empty list."""
    if values is None or isinstance(values, float):  # NULL arrives as None, or NaN from pandas
        return ""
    return ", ".join(sorted(str(x) for x in values if x is not None))


def model_timeline(source: Any, window: Window, bucket: dt.timedelta = dt.timedelta(hours=1)) -> pd.DataFrame:
    """Calls per time bucket, request model and the response model that answered (a swap shows as a new band)."""
    lake = as_lake(source)
    t = lake.spans(window)
    t = t.filter(t.request_model.notnull())
    grouped = t.group_by([time_bucket(t, bucket).name("bucket"), t.request_model,
                          t.response_model.fill_null("(none)").name("response_model")]).aggregate(calls=t.count())
    return to_frame(grouped).sort_values(["bucket", "request_model", "response_model"], ignore_index=True)
