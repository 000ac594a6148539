"""Time to first token from the shapes emitters give it: a seconds attribute, a first-chunk span event,
an ISO timestamp attribute (../shared/research/genai-attribute-map.md §3.7)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
from spanlake.collector.attr_index import AttrIndex, scatter
from spanlake.collector.genai_batch import SpanBatch, null_column, valid, where
from spanlake.collector.genai_map import EmitterMap, json_str, to_float

_TTFT_SOURCES = {"attr": "attribute", "event": "span_event", "iso": "iso_timestamp"}


def ttft_of(emitter: EmitterMap, ix: AttrIndex, batch: SpanBatch, mask: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """(TTFT seconds, its source) per row from the emitter's TTFT shapes, first present wins."""
    n = ix.rows
    ttft, source = null_column(n, "ttft_s"), null_column(n, "ttft_source")
    for kind, key in reversed(emitter.ttft):  # later shapes first, so earlier ones overwrite them
        if kind == "attr":
            value = ix.typed(key, to_float)
        else:
            value = ttft_per_span(kind, key, ix, batch, mask)
        found = valid(value)
        if found.any():
            ttft = where(found, value, ttft)
            source = where(found, pa.array(np.full(n, _TTFT_SOURCES[kind], object), pa.string()), source)
    return ttft, source


def ttft_per_span(kind: str, key: str, ix: AttrIndex, batch: SpanBatch, mask: np.ndarray) -> pa.Array:
    """TTFT from a first-chunk span event or an ISO timestamp attribute, span by span (streams only)."""
    rows, values = [], []
    if kind == "event":
        for row in np.flatnonzero(mask):
            events = batch.events[row]
            first = next((e["time_unix_nano"] for e in events if e["name"] == key), 0) if events else 0
            if first:
                rows.append(int(row))
                values.append((first - batch.starts[row]) / 1e9)
    elif kind == "iso":
        texts = ix.values(key)
        for row in np.flatnonzero(mask & valid(texts)):
            value = iso_minus(json_str(texts[int(row)].as_py()), batch.starts[row])
            if value is not None:
                rows.append(int(row))
                values.append(value)
    return scatter(null_column(ix.rows, "ttft_s"), rows, values)


def iso_minus(text: str | None, start_ns: int) -> float | None:
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return round((when - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) / dt.timedelta(microseconds=1)
                 - start_ns / 1000) / 1e6
