"""One flush of spans as the GenAI normaliser reads it, and the row-mask helpers over its columns.

The normaliser and its helper modules (TTFT, errors, emitter quirks) share these; they hold no
GenAI knowledge of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from spanlake.collector import content as ct
from spanlake.collector.genai_map import EmitterMap
from spanlake.collector.storage import schema


class SpanContent(NamedTuple):
    """What was taken out of one span's attributes as it arrived: its content, and source values."""

    emitter: EmitterMap
    content: ct.Content | None
    kept: dict[str, str]  # encoded values of content keys some map reads a column from


@dataclass
class SpanBatch:
    """What the normaliser reads of one flush of spans, row-aligned (the span builder's columns)."""

    attrs: pa.MapArray
    scope_names: Sequence[str | None]
    scope_versions: Sequence[str | None]
    names: Sequence[str]
    status_codes: Sequence[str]
    status_messages: Sequence[str | None]
    events: Sequence[list[dict[str, Any]] | None]
    starts: Sequence[int]
    trace_ids: Sequence[str]
    span_ids: Sequence[str]
    services: Sequence[str | None]
    content: Mapping[int, SpanContent] = field(default_factory=dict)


def null_column(n: int, column: str) -> pa.Array:
    """An all-NULL array of a stored column's type."""
    return pa.nulls(n, _TYPES.get(column, pa.string()))


_TYPES: dict[str, pa.DataType] = {c.name: c.type for c in schema.SPAN_COLUMNS}  # the stored types


def where(mask: np.ndarray, value: pa.Array, other: pa.Array) -> pa.Array:
    """``value`` on rows of ``mask``, else ``other`` (skipping the work when the mask is all or nothing)."""
    if mask.all():
        return value
    if not mask.any():
        return other
    return pc.if_else(pa.array(mask), value, other.cast(value.type))


def valid(array: pa.Array) -> np.ndarray:
    """Per row: is the value non-NULL."""
    return np.asarray(pc.is_valid(array).to_numpy(zero_copy_only=False), bool)


def is_true(array: pa.Array) -> np.ndarray:
    """Per row: is the boolean value true (null counts as false)."""
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), bool)
