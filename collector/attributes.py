"""OTLP AnyValue/KeyValue → Python values and the stored string map, with size and depth caps.

Stored attribute maps keep strings as sent and encode every other value as JSON (ints, floats,
bools, arrays, kvlists; bytes as base64), so nothing is lost and SQL stays simple. Keys are capped
like values; with a :class:`~spanlake.collector.redaction.Redactor`, secrets are replaced as values
are decoded (the affected keys listed in ``spanlake.redacted``).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from typing import Any

from spanlake.collector.redaction import Redactor
from spanlake.instrumentation.semconv import SPANLAKE_REDACTED, SPANLAKE_TRUNCATED

DEPTH_MARKER = "[spanlake: nested deeper than the depth limit]"
DEFAULT_MAX_KEY_BYTES = 1024
_UNSEEN = object()


class AttributeDecoder:
    """Decodes attribute lists under one size cap and depth cap; counts what it truncated.

    Keys longer than ``max_key_bytes`` are truncated like values. With a ``redactor``, credential
    attributes and secrets inside strings are replaced by markers before any cap applies (so a cut
    cannot leave half a key that no longer matches)."""

    def __init__(self, max_bytes: int, max_depth: int, redactor: Redactor | None = None,
                 max_key_bytes: int = DEFAULT_MAX_KEY_BYTES) -> None:
        self.max_bytes = max_bytes
        self.max_depth = max_depth
        self.max_key_bytes = max_key_bytes
        self.redactor = redactor
        # A str of n characters is at most 4n bytes: only longer ones need an exact check.
        self._char_threshold = max_bytes // 4
        self._key_threshold = max_key_bytes // 4
        self.truncated = 0

    @property
    def redacted(self) -> int:
        """Values that had a secret replaced, since this decoder was made."""
        return self.redactor.redacted if self.redactor is not None else 0

    def value(self, v: Any, depth: int = 0) -> Any:
        which = v.WhichOneof("value")
        if which == "string_value":
            s = v.string_value
            if self.redactor is not None:
                s = self.redactor.text(s)
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
            return dict(self._entry(kv, depth + 1) for kv in v.kvlist_value.values)
        if which == "bytes_value":
            return base64.b64encode(v.bytes_value).decode()
        return None

    def _entry(self, kv: Any, depth: int) -> tuple[str, Any]:
        """One kvlist entry: key capped, a credential key's value replaced whole."""
        key = kv.key if len(kv.key) <= self._key_threshold else self._cap_key(kv.key)
        kind = self.redactor.key_kind(key) if self.redactor is not None else None
        return key, (self.redactor.whole(kind) if kind is not None and self.redactor is not None
                     else self.value(kv.value, depth))

    def _cap(self, s: str, limit: int | None = None) -> str:
        limit = self.max_bytes if limit is None else limit
        raw = s.encode("utf-8")
        if len(raw) <= limit:
            return s
        self.truncated += 1
        kept = raw[:limit].decode("utf-8", "ignore")
        return f"{kept}…[spanlake: truncated {len(raw) - limit} bytes]"

    def _cap_key(self, key: str) -> str:
        return self._cap(key, self.max_key_bytes)

    def to_dict(self, kvs: Iterable[Any]) -> dict[str, Any]:
        """KeyValue list → dict; values longer than the cap are truncated and their keys listed
        (spanlake.truncated), as are the keys of values that had secrets replaced (spanlake.redacted)."""
        before = self.truncated
        threshold, key_threshold = self._char_threshold, self._key_threshold
        red = self.redactor
        secret_keys = red.key_kinds if red is not None else {}  # key → credential kind, as far as seen
        redacted: list[str] | None = None
        out: dict[str, Any] = {}
        for kv in kvs:
            key = kv.key
            if len(key) > key_threshold:
                key = self._cap_key(key)
            v = kv.value
            if red is not None:
                kind = secret_keys.get(key, _UNSEEN)
                if kind is _UNSEEN:
                    kind = red.key_kind(key)
                if kind is not None:
                    out[key] = red.whole(str(kind))
                    redacted = [*(redacted or ()), key]
                    continue
            which = v.WhichOneof("value")
            # Scalars inline: this loop runs for every attribute of every span.
            if which == "string_value":
                s = v.string_value
                if red is not None and len(s) >= red.min_chars and red.suspect(s):
                    clean = red.text(s)
                    if clean != s:
                        s, redacted = clean, [*(redacted or ()), key]
                out[key] = s if len(s) <= threshold else self._cap(s)
            elif which == "int_value":
                out[key] = v.int_value
            elif which == "double_value":
                out[key] = v.double_value
            elif which == "bool_value":
                out[key] = v.bool_value
            elif red is not None:
                seen = red.redacted
                out[key] = self.value(v)
                if red.redacted != seen:
                    redacted = [*(redacted or ()), key]
            else:
                out[key] = self.value(v)
        if self.truncated != before:
            out[SPANLAKE_TRUNCATED] = [k for k, val in out.items() if _is_truncated(val) or _is_truncated(k)]
        if redacted:
            out[SPANLAKE_REDACTED] = redacted
        return out

    def text(self, text: str, attrs: dict[str, Any], field: str) -> str:
        """A span name or status message with secrets replaced; ``field`` then joins attrs' spanlake.redacted."""
        red = self.redactor
        if red is None or not text or not red.suspect(text):
            return text
        clean = red.text(text)
        if clean != text:
            mark_redacted(attrs, field)
        return clean

    def body(self, v: Any, attrs: dict[str, Any], field: str) -> Any:
        """A log record's body (any AnyValue), secrets replaced; ``field`` then joins attrs' spanlake.redacted."""
        seen = self.redacted
        value = self.value(v)
        if self.redacted != seen:
            mark_redacted(attrs, field)
        return value


def mark_redacted(attrs: dict[str, Any], field: str) -> None:
    """Add ``field`` to the spanlake.redacted list of ``attrs``."""
    listed = attrs.get(SPANLAKE_REDACTED)
    attrs[SPANLAKE_REDACTED] = [*(listed if isinstance(listed, list) else ()), field]


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
