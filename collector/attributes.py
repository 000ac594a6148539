"""OTLP AnyValue/KeyValue → Python values and the stored string map, with size and depth caps.

Stored attribute maps keep strings as sent and encode every other value as JSON (ints, floats,
bools, arrays, kvlists; bytes as base64), so nothing is lost and SQL stays simple.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from typing import Any

from spanlake.instrumentation.semconv import SPANLAKE_TRUNCATED

DEPTH_MARKER = "[spanlake: nested deeper than the depth limit]"


class AttributeDecoder:
    """Decodes attribute lists under one size cap and depth cap; counts what it truncated."""

    def __init__(self, max_bytes: int, max_depth: int) -> None:
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        # A str of n characters is at most 4n bytes: only longer ones need an exact check.
        self._char_threshold = max_bytes // 4
        self.truncated = 0

    def value(self, v: Any, depth: int = 0) -> Any:
        which = v.WhichOneof("value")
        if which == "string_value":
            s = v.string_value
            return self._cap(s) if len(s) > self._char_threshold else s
        if which == "int_value":
            return v.int_value
        if which == "double_value":
            return v.double_value
        if which == "bool_value":
            return v.bool_value
        if depth >= self.max_depth and which in ("array_value", "kvlist_value"):
            return DEPTH_MARKER
        if which == "array_value":
            return [self.value(x, depth + 1) for x in v.array_value.values]
        if which == "kvlist_value":
            return {kv.key: self.value(kv.value, depth + 1) for kv in v.kvlist_value.values}
        if which == "bytes_value":
            return base64.b64encode(v.bytes_value).decode()
        return None

    def _cap(self, s: str) -> str:
        raw = s.encode("utf-8")
        if len(raw) <= self.max_bytes:
            return s
        self.truncated += 1
        kept = raw[: self.max_bytes].decode("utf-8", "ignore")
        return f"{kept}…[spanlake: truncated {len(raw) - self.max_bytes} bytes]"

    def to_dict(self, kvs: Iterable[Any]) -> dict[str, Any]:
        """KeyValue list → dict; values longer than the cap are truncated and their keys listed."""
        before = self.truncated
        threshold = self._char_threshold
        out: dict[str, Any] = {}
        for kv in kvs:
            v = kv.value
            which = v.WhichOneof("value")
            # Scalars inline: this loop runs for every attribute of every span.
            if which == "string_value":
                s = v.string_value
                out[kv.key] = s if len(s) <= threshold else self._cap(s)
            elif which == "int_value":
                out[kv.key] = v.int_value
            elif which == "double_value":
                out[kv.key] = v.double_value
            elif which == "bool_value":
                out[kv.key] = v.bool_value
            else:
                out[kv.key] = self.value(v)
        if self.truncated != before:
            out[SPANLAKE_TRUNCATED] = [k for k, val in out.items() if _is_truncated(val)]
        return out


def _is_truncated(value: Any) -> bool:
    return isinstance(value, str) and value.endswith("bytes]") and "…[spanlake: truncated " in value


def encode_value(value: Any) -> str:
    """The stored text of one attribute value."""
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    return json.dumps(value, ensure_ascii=False, allow_nan=True)


def extend_map(attrs: dict[str, Any], keys: list[str], values: list[str]) -> int:
    """Append a dict's entries to flat key/value lists (for a MapArray); returns the entry count."""
    keys.extend(attrs.keys())
    values.extend([v if type(v) is str else (str(v) if type(v) is int else _encode_cached(v))
                   for v in attrs.values()])
    return len(attrs)


_LIST_CACHE: dict[tuple[str, ...], str] = {}


def _encode_cached(value: Any) -> str:
    """encode_value, memoised for short string lists (finish reasons repeat on every span)."""
    if type(value) is float and math.isfinite(value):
        return repr(value)  # what json.dumps writes for a finite float, without its overhead
    if type(value) is list and len(value) <= 4 and all(type(x) is str for x in value):
        key = tuple(value)
        text = _LIST_CACHE.get(key)
        if text is None:
            text = encode_value(value)
            if len(_LIST_CACHE) < 10_000:
                _LIST_CACHE[key] = text
        return text
    return encode_value(value)
