"""Secrets out of everything the collector stores: credential attributes whole, key formats in any text.

Two rules, applied where attribute values, span names, log bodies and message content are decoded:

- an attribute whose *key* names a credential header or setting (``http.request.header.authorization``,
  ``…cookie``, ``*.api_key``, ``x-api-key``…) has its whole value replaced by a marker;
- inside any string, provider key formats (``sk-``, ``sk-proj-``, ``sk-ant-`` + 20 or more key characters),
  AWS access key ids (``AKIA``/``ASIA`` + 16), ``Bearer <token>`` and the configured extra patterns are
  replaced in place by ``[REDACTED:<kind>]``.

Clean values must cost little, since every string of every span passes here: a substring pre-check
(``str.find`` of each pattern's literal anchor: ``sk-``, ``AKIA``, ``ASIA``, ``earer``), then one precompiled
combined regex tried only at the anchors found. Extra patterns have no known anchor: they are one more
combined regex searched over every string, so configuring them costs every value a regex search.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from spanlake.instrumentation.semconv import SPANLAKE_REDACTED_MARKER

# Last dotted segment of an attribute key (lower-cased) → kind of credential its whole value is.
_SECRET_KEY_SEGMENTS = {
    "authorization": "authorization", "proxy-authorization": "authorization",
    "cookie": "cookie", "set-cookie": "cookie",
    "api_key": "api-key", "api-key": "api-key", "apikey": "api-key", "x-api-key": "api-key",
    "x-goog-api-key": "api-key",
}
# A key character run must hold a digit or an upper-case letter: real keys are random base62 (20 random
# characters miss both with probability ~3e-8), while hyphenated words ("sk-learn-compatible-estimator") don't.
_KEYLIKE = r"(?=[A-Za-z0-9_-]*[A-Z0-9])"


def _start_of_token(literal: str) -> str:
    """After ``literal``: it was not glued to a preceding letter or digit ("task-…" holds "sk-"), except
    after a JSON escape (message content arrives as JSON text, where "\\nsk-…" is a newline then a key)."""
    return (rf"(?:(?<![A-Za-z0-9]{literal})|(?<=\\[nrtbf]{literal})"
            rf"|(?<=\\u[0-9a-fA-F]{{4}}{literal}))")


_BEARER = "[Bb][Ee][Aa][Rr][Ee][Rr]"
# Each pattern begins with its literal anchor, so it can be tried only where str.find saw that anchor.
BUILTIN_PATTERNS: tuple[tuple[str, str], ...] = (
    ("anthropic-key", "sk-ant-" + _start_of_token("sk-ant-") + _KEYLIKE + r"[A-Za-z0-9_-]{20,}"),
    ("openai-key", "sk-" + _start_of_token("sk-") + _KEYLIKE + r"[A-Za-z0-9_-]{20,}"),  # sk-, sk-proj-, sk-svcacct-
    ("aws-access-key-id", "A[KS]IA" + _start_of_token("A[KS]IA") + r"[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ("bearer-token", _BEARER + _start_of_token(_BEARER) + r"\s+(?=[A-Za-z0-9._~+/-]*[A-Z0-9])"
                     r"[A-Za-z0-9._~+/-]{16,}=*"),
)
# Every built-in match starts at one of these (offset: where the match starts relative to the find).
_ANCHORS = (("sk-", 0), ("AKIA", 0), ("ASIA", 0), ("earer", 1), ("EARER", 1))
BUILTIN_MIN_CHARS = 20  # the shortest built-in match (an AWS key id): shorter strings need no look at all
CUSTOM_KIND = "custom"
_KEY_CACHE_MAX = 50_000


def marker(kind: str) -> str:
    """What replaces a redacted secret: ``[REDACTED:openai-key]``."""
    return SPANLAKE_REDACTED_MARKER.format(kind=kind)


def _combine(named: Iterable[tuple[str, str]]) -> tuple[re.Pattern[str], dict[str, str]]:
    """One regex of alternatives ``(?P<gN>pattern)``, and its group name → kind of secret."""
    kinds: dict[str, str] = {}
    alternatives = []
    for i, (kind, pattern) in enumerate(named):
        kinds[f"g{i}"] = kind
        alternatives.append(f"(?P<g{i}>{pattern})")
    return re.compile("|".join(alternatives)), kinds


def compile_extra(extra: Iterable[str]) -> re.Pattern[str] | None:
    """The configured extra patterns as one regex (None when there are none); ValueError names a bad one."""
    patterns = tuple(extra)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"redact_patterns: {pattern!r} is not a valid regex: {exc}") from None
    if not patterns:
        return None
    try:
        return re.compile("|".join(f"(?:{p})" for p in patterns))
    except re.error as exc:  # e.g. two patterns using one group name
        raise ValueError(f"redact_patterns do not combine into one regex: {exc}") from None


_BUILTIN, _BUILTIN_KINDS = _combine(BUILTIN_PATTERNS)
_CUSTOM_MARKER = marker(CUSTOM_KIND)


class Redactor:
    """Replaces secrets by markers; counts the values it changed (``redacted``) for /metrics.

    Built-in patterns are tried only where ``str.find`` saw their literal anchor (C-speed scans; a
    regex search over the same text costs ~40x more in Python's engine); the extra patterns, having
    no known anchor, are one combined regex searched over every string."""

    def __init__(self, extra_patterns: Iterable[str] = ()) -> None:
        self._extra = compile_extra(extra_patterns)
        self.min_chars = BUILTIN_MIN_CHARS if self._extra is None else 0  # shorter strings hold no secret
        self.key_kinds: dict[str, str | None] = {}
        self.redacted = 0

    def key_kind(self, key: str) -> str | None:
        """The kind of credential an attribute key holds as its whole value (None: an ordinary key)."""
        try:
            return self.key_kinds[key]
        except KeyError:
            pass
        kind = _SECRET_KEY_SEGMENTS.get(key.rsplit(".", 1)[-1].lower())
        if len(self.key_kinds) < _KEY_CACHE_MAX:
            self.key_kinds[key] = kind
        return kind

    def suspect(self, text: str) -> bool:
        """Cheap test: could ``text`` hold a secret? (False means it surely holds none.)"""
        if len(text) < self.min_chars:
            return False
        return (self._extra is not None or "sk-" in text or "AKIA" in text or "ASIA" in text or "earer" in text
                or "EARER" in text)

    def text(self, text: str) -> str:
        """``text`` with every secret replaced by its marker (counted once per changed value)."""
        if not self.suspect(text):
            return text
        out = _builtin_sub(text)
        if self._extra is not None:
            out = self._extra.sub(_CUSTOM_MARKER, out)
        if out != text:
            self.redacted += 1
        return out

    def whole(self, kind: str) -> str:
        """The marker that replaces a credential attribute's whole value (counted)."""
        self.redacted += 1
        return marker(kind)


def _builtin_sub(text: str) -> str:
    """Replace built-in matches, trying the combined regex only at the anchors' positions."""
    starts: list[int] = []
    for anchor, back in _ANCHORS:
        i = text.find(anchor)
        while i >= 0:
            start = i - back
            # Glued to a letter or digit ("task-", "unbearer"), and not after a JSON escape: no token starts here.
            glued = start > 0 and text[start - 1].isalnum() and text[start - 2:start - 1] != "\\" \
                and text[start - 6:start - 5] != "\\"
            if start >= 0 and not glued:
                starts.append(start)
            i = text.find(anchor, i + 1)
    if not starts:
        return text
    pieces: list[str] = []
    done = 0
    match = _BUILTIN.match
    for start in sorted(starts):
        if start < done:
            continue  # inside a match already replaced
        m = match(text, start)
        if m is not None:
            pieces += [text[done:start], marker(_BUILTIN_KINDS[str(m.lastgroup)])]
            done = m.end()
    return "".join(pieces) + text[done:] if pieces else text
