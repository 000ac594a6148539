"""spanlake.instrumentation: one line in an app gives exact GenAI spans, TTFT, tags and metrics.

    import spanlake.instrumentation as sl
    sl.instrument(service_name="checkout")
    with sl.tags(feature="ticket-summary", prompt_name="summarise", prompt_version="v3", user_id="u1"):
        client.chat.completions.create(...)
    sl.record_feedback(response.id, 1.0, comment="helpful")

Providers: injected (`tracer_provider=`, `meter_provider=`, `logger_provider=`) > the app's global ones >
new OTLP ones configured by the standard `OTEL_EXPORTER_OTLP_*` variables (protocol grpc or http/protobuf),
installed as global only when none exists. Content capture is off unless `capture_content=True` or
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` (true | span_only | event_only | span_and_event);
captured text goes through `redactor` (default: the built-in `default_redactor`; pass `lambda s: s` to
keep text as is) and is capped at `max_content_chars` (env `SPANLAKE_CAPTURE_MAX_CHARS`).
Supported libraries and versions: see `package.py`. Zero-code: `opentelemetry-instrument python app.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from .config import ContentCapture, Redactor
from .feedback import record_evaluation, record_feedback
from .redact import default_redactor
from .tags import tags

logger = logging.getLogger(__name__)

__all__ = [
    "ContentCapture",
    "default_redactor",
    "instrument",
    "is_instrumented",
    "record_evaluation",
    "record_feedback",
    "tags",
    "uninstrument",
]


def instrument(
    service_name: str | None = None,
    *,
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
    capture_content: bool | str | ContentCapture | None = None,
    redactor: Redactor | None = None,
    max_content_chars: int | None = None,
    libraries: Collection[str] | None = None,
) -> None:
    """Set up providers and instrument every supported, installed client library (idempotent)."""
    from .instrumentor import SpanlakeInstrumentor

    instrumentor = SpanlakeInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        logger.warning("spanlake instrumentation is already active; call uninstrument() first to reconfigure")
        return
    instrumentor.instrument(
        service_name=service_name,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        capture_content=capture_content,
        redactor=redactor,
        max_content_chars=max_content_chars,
        libraries=libraries,
    )


def uninstrument() -> None:
    """Restore every wrapped method and flush the providers spanlake created."""
    from .instrumentor import SpanlakeInstrumentor

    SpanlakeInstrumentor().uninstrument()


def is_instrumented() -> bool:
    """Whether `instrument()` (or zero-code instrumentation) is active."""
    from .instrumentor import SpanlakeInstrumentor

    return bool(SpanlakeInstrumentor().is_instrumented_by_opentelemetry)
