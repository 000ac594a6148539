"""Bounds on the numbers the lake stores, checked per item before Arrow conversion.

OTLP times and counts are uint64 (fixed64) and attribute values are arbitrary: a value beyond what a
column holds must never make a whole batch fail (issue 12). Out-of-range values are clamped or
replaced and the repair is said in ``spanlake.value_clamped``; attributes that feed typed columns with
an implausible value (a token count of 2^63) are dropped and listed in ``spanlake.rejected_attributes``.
"""

from __future__ import annotations

import math
from typing import Any

from spanlake.collector.genai_map import ALL_EMITTERS
from spanlake.instrumentation import semconv as sc

MAX_INT64 = 2**63 - 1
MAX_TOKENS = 10**9
MAX_HTTP_STATUS = 999
_TOKEN_COLUMNS = ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "cache_write_tokens",
                  "reasoning_tokens")
# Attribute keys whose value becomes a token count (read directly, not from inside JSON text).
TOKEN_KEYS = frozenset(src.key for e in ALL_EMITTERS for column in _TOKEN_COLUMNS
                       for src in e.columns.get(column, ()) if not src.path)
HTTP_STATUS_KEYS = frozenset({sc.HTTP_RESPONSE_STATUS_CODE, sc.HTTP_STATUS_CODE_OLD})
GUARDED_KEYS = TOKEN_KEYS | HTTP_STATUS_KEYS
_LIMIT = {**{k: MAX_TOKENS for k in TOKEN_KEYS}, **{k: MAX_HTTP_STATUS for k in HTTP_STATUS_KEYS}}


def _number(value: Any) -> float | int | None:
    """The number an attribute value would convert to (as the normaliser reads it), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except (ValueError, OverflowError):
                return None
    return None


def _in_range(number: float | int, high: int) -> bool:
    if isinstance(number, float) and not math.isfinite(number):
        return False
    return 0 <= number <= high


def reject_implausible(attrs: dict[str, Any]) -> None:
    """Drop token-count and HTTP-status attributes whose value is out of range, listing their keys."""
    rejected = None
    for key in GUARDED_KEYS.intersection(attrs):
        value = attrs[key]
        high = _LIMIT[key]
        if type(value) is int and 0 <= value <= high:  # the common case, kept cheap: this runs per span
            continue
        number = _number(value)
        if number is not None and not _in_range(number, high):
            rejected = [*(rejected or ()), key]
    if rejected:
        for key in rejected:
            del attrs[key]
        attrs[sc.SPANLAKE_REJECTED_ATTRIBUTES] = sorted(rejected)


def note_clamped(attrs: dict[str, Any], what: str) -> None:
    """Add one repair to an item's ``spanlake.value_clamped`` text."""
    previous = attrs.get(sc.SPANLAKE_VALUE_CLAMPED)
    attrs[sc.SPANLAKE_VALUE_CLAMPED] = f"{previous}; {what}" if isinstance(previous, str) else what


def clamp_count(value: int, name: str, attrs: dict[str, Any]) -> int:
    """A uint64 count as int64: above 2^63-1 it is clamped there, and the repair noted."""
    if value > MAX_INT64:
        note_clamped(attrs, f"{name} {value} above 2^63-1, clamped")
        return MAX_INT64
    return value


def clamp_counts(values: Any, name: str, attrs: dict[str, Any]) -> list[int]:
    """A repeated uint64 field as a list of int64 (each clamped as in :func:`clamp_count`)."""
    out = list(values)
    if out and max(out) > MAX_INT64:
        note_clamped(attrs, f"{name}: {sum(v > MAX_INT64 for v in out)} value(s) above 2^63-1, clamped")
        out = [min(v, MAX_INT64) for v in out]
    return out


def time_or_zero(value: int, name: str, attrs: dict[str, Any]) -> int:
    """A uint64 time in ns as int64: beyond 2^63-1 (after 2262) it is treated as absent (0), and noted."""
    if value > MAX_INT64:
        note_clamped(attrs, f"{name} {value} beyond 2^63-1 ns, treated as absent")
        return 0
    return value
