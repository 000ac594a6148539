"""Instrumentation settings: one frozen object built once, argument > environment > default.

This is the only module of spanlake.instrumentation that reads `os.environ` (the OTel SDK and its
exporters read their own `OTEL_*` variables for endpoint, headers and resource).
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Final

logger = logging.getLogger(__name__)

OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: Final = (
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
)
"""Standard switch for prompt/completion capture: `true`/`span_only`, `event_only`, `span_and_event`,
`false`/`no_content` (default: off)."""
SPANLAKE_CAPTURE_MAX_CHARS: Final = "SPANLAKE_CAPTURE_MAX_CHARS"
"""Cap on captured message text per attribute, in characters (default 16384)."""
OTEL_EXPORTER_OTLP_PROTOCOL: Final = "OTEL_EXPORTER_OTLP_PROTOCOL"
"""Standard OTLP protocol: `grpc` or `http/protobuf` (default `http/protobuf`); per-signal variants too."""
OTEL_SDK_DISABLED: Final = "OTEL_SDK_DISABLED"
"""Standard switch: `true` makes `instrument()` create no providers (the app's or no-op ones are used)."""

DEFAULT_MAX_CONTENT_CHARS: Final = 16_384

Redactor = Callable[[str], str]


class ContentCapture(enum.Enum):
    """Where message content goes when captured."""

    OFF = "no_content"
    SPAN = "span_only"
    EVENT = "event_only"
    SPAN_AND_EVENT = "span_and_event"

    @property
    def on_span(self) -> bool:
        return self in (ContentCapture.SPAN, ContentCapture.SPAN_AND_EVENT)

    @property
    def on_event(self) -> bool:
        return self in (ContentCapture.EVENT, ContentCapture.SPAN_AND_EVENT)


_CAPTURE_ALIASES: Final[Mapping[str, ContentCapture]] = {
    "": ContentCapture.OFF,
    "false": ContentCapture.OFF,
    "0": ContentCapture.OFF,
    "no": ContentCapture.OFF,
    "off": ContentCapture.OFF,
    "no_content": ContentCapture.OFF,
    "true": ContentCapture.SPAN,
    "1": ContentCapture.SPAN,
    "yes": ContentCapture.SPAN,
    "on": ContentCapture.SPAN,
    "span_only": ContentCapture.SPAN,
    "event_only": ContentCapture.EVENT,
    "span_and_event": ContentCapture.SPAN_AND_EVENT,
}


@dataclass(frozen=True)
class InstrumentationConfig:
    """Everything the wrappers need to know, fixed at `instrument()` time."""

    service_name: str | None = None
    capture: ContentCapture = ContentCapture.OFF
    max_content_chars: int = DEFAULT_MAX_CONTENT_CHARS
    redactor: Redactor | None = None
    libraries: frozenset[str] | None = None
    otlp_protocols: Mapping[str, str] = field(default_factory=dict)
    sdk_disabled: bool = False

    def __post_init__(self) -> None:
        if self.max_content_chars < 64:
            raise ValueError(f"max_content_chars must be >= 64, got {self.max_content_chars}")


def parse_capture(value: bool | str | ContentCapture | None) -> ContentCapture:
    """A capture mode from a bool, an env-style string or an enum; unknown strings mean OFF (logged)."""
    if isinstance(value, ContentCapture):
        return value
    if isinstance(value, bool):
        return ContentCapture.SPAN if value else ContentCapture.OFF
    key = (value or "").strip().lower()
    if key not in _CAPTURE_ALIASES:
        logger.warning(
            "unknown %s value %r; content capture stays off",
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT,
            value,
        )
    return _CAPTURE_ALIASES.get(key, ContentCapture.OFF)


def _protocol(signal: str, env: Mapping[str, str]) -> str:
    specific = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
    return (specific or env.get(OTEL_EXPORTER_OTLP_PROTOCOL) or "http/protobuf").strip().lower()


def load_config(
    *,
    service_name: str | None = None,
    capture_content: bool | str | ContentCapture | None = None,
    max_content_chars: int | None = None,
    redactor: Redactor | None = None,
    libraries: Collection[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> InstrumentationConfig:
    """Build the config: explicit arguments win over environment variables, which win over defaults."""
    env = os.environ if environ is None else environ
    capture = parse_capture(
        capture_content
        if capture_content is not None
        else env.get(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT)
    )
    max_chars = (
        max_content_chars
        if max_content_chars is not None
        else int(env.get(SPANLAKE_CAPTURE_MAX_CHARS) or DEFAULT_MAX_CONTENT_CHARS)
    )
    return InstrumentationConfig(
        service_name=service_name,
        capture=capture,
        max_content_chars=max_chars,
        redactor=redactor,
        libraries=frozenset(libraries) if libraries is not None else None,
        otlp_protocols={s: _protocol(s, env) for s in ("traces", "metrics", "logs")},
        sdk_disabled=(env.get(OTEL_SDK_DISABLED) or "").strip().lower() == "true",
    )
