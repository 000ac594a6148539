"""Secrets out of everything the collector stores: credential attributes whole, key formats in any text.

Two rules, applied where attribute values, span names, log bodies and message content are decoded:

- an attribute whose *key* names a credential header or setting (``http.request.header.authorization``,
  ``…cookie``, ``*.api_key``, ``x-api-key``…) has its whole value replaced by a marker;
- inside any string, provider key formats (``sk-``, ``sk-proj-``, ``sk-ant-`` + 20 or more key characters),
  AWS access key ids (``AKIA``/``ASIA`` + 16), ``Bearer <token>`` and the configured extra patterns are
  replaced in place by ``[REDACTED:<kind>]``.

Clean values must cost little, since every string of every span passes here: one precompiled combined
regex, run only when a substring pre-check says a built-in pattern could match (extra patterns have no
such pre-check, so configuring them makes every string pay for one regex search).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

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
# Start of a token: not glued to a preceding letter/digit ("task-…" holds "sk-"), except after a JSON escape
# (message content arrives as JSON text, where "\nsk-…" is a newline then a key).
_START = r"(?:(?<![A-Za-z0-9])|(?<=\\[nrtbf])|(?<=\\u[0-9a-fA-F]{4}))"
BUILTIN_PATTERNS: tuple[tuple[str, str], ...] = (
    ("anthropic-key", _START + r"sk-ant-" + _KEYLIKE + r"[A-Za-z0-9_-]{20,}"),
    ("openai-key", _START + r"sk-" + _KEYLIKE + r"[A-Za-z0-9_-]{20,}"),  # sk-…, sk-proj-…, sk-svcacct-…
    ("aws-access-key-id", _START + r"(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ("bearer-token", _START + r"[Bb][Ee][Aa][Rr][Ee][Rr]\s+" + r"(?=[A-Za-z0-9._~+/-]*[A-Z0-9])"
                     r"[A-Za-z0-9._~+/-]{16,}=*"),
)
# Every built-in pattern holds one of these literally: a string holding none cannot match.
_PRECHECK = ("sk-", "AKIA", "ASIA", "earer", "EARER")
CUSTOM_KIND = "custom"
_KEY_CACHE_MAX = 50_000


def marker(kind: str) -> str:
    """What replaces a redacted secret: ``[REDACTED:openai-key]``."""
    return SPANLAKE_REDACTED_MARKER.format(kind=kind)


def compile_patterns(extra: Iterable[str] = ()) -> tuple[re.Pattern[str], dict[str, str]]:
    """One combined regex of the built-in and extra patterns, and its group name → kind of secret.

    Raises ValueError naming the pattern that does not compile."""
    groups: dict[str, str] = {}
    alternatives = []
    for i, (kind, pattern) in enumerate(BUILTIN_PATTERNS):
        groups[f"b{i}"] = kind
        alternatives.append(f"(?P<b{i}>{pattern})")
    for i, pattern in enumerate(extra):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"redact_patterns: {pattern!r} is not a valid regex: {exc}") from None
        groups[f"c{i}"] = CUSTOM_KIND
        alternatives.append(f"(?P<c{i}>{pattern})")
    try:
        return re.compile("|".join(alternatives)), groups
    except re.error as exc:  # e.g. two extra patterns using one group name
        raise ValueError(f"redact_patterns do not combine into one regex: {exc}") from None


class Redactor:
    """Replaces secrets by markers; counts the values it changed (``redacted``) for /metrics."""

    def __init__(self, extra_patterns: Iterable[str] = ()) -> None:
        extra = tuple(extra_patterns)
        self._regex, self._kinds = compile_patterns(extra)
        self._always_scan = bool(extra)
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
        if self._always_scan:
            return True
        return "sk-" in text or "AKIA" in text or "ASIA" in text or "earer" in text or "EARER" in text

    def text(self, text: str) -> str:
        """``text`` with every secret replaced by its marker (counted once per changed value)."""
        if not self.suspect(text):
            return text
        out = self._regex.sub(self._replace, text)
        if out != text:
            self.redacted += 1
        return out

    def _replace(self, match: re.Match[str]) -> str:
        # lastgroup is the outermost group that closed last: the alternative, not a group inside it
        return marker(self._kinds.get(str(match.lastgroup), CUSTOM_KIND))

    def whole(self, kind: str) -> str:
        """The marker that replaces a credential attribute's whole value (counted)."""
        self.redacted += 1
        return marker(kind)

    def value(self, value: Any) -> Any:
        """A decoded attribute value (string, list, dict, scalar) with the secrets in its strings replaced."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value
