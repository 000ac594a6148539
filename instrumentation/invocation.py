"""The lifecycle of one GenAI call: start the CLIENT span, mark the first chunk, end exactly once.

Also records the GenAI metrics and (when capture is on) the content, and indexes the response id for
feedback. Every method here is called from a wrapper's guarded block; none raises into the app.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import semconv as sc
from .config import ContentCapture
from .content import ContentRenderer, Message, Part
from .tags import current_tag_attributes
from .telemetry import Telemetry

_METRIC_KEYS = (
    sc.GEN_AI_OPERATION_NAME,
    sc.GEN_AI_PROVIDER_NAME,
    sc.GEN_AI_REQUEST_MODEL,
    sc.SERVER_ADDRESS,
    sc.SERVER_PORT,
)


@dataclass
class Usage:
    """Token usage normalised to semconv meaning (input includes cache reads/writes)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read: int | None = None
    cache_creation: int | None = None
    reasoning: int | None = None

    def attributes(self) -> dict[str, int]:
        pairs = (
            (sc.GEN_AI_USAGE_INPUT_TOKENS, self.input_tokens),
            (sc.GEN_AI_USAGE_OUTPUT_TOKENS, self.output_tokens),
            (sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, self.cache_read),
            (sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, self.cache_creation),
            (sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, self.reasoning),
        )
        return {key: value for key, value in pairs if isinstance(value, int)}


class Invocation:
    """One call's span and timing. `finish`/`fail` are idempotent: the span ends exactly once."""

    __slots__ = (
        "_ended",
        "_first_chunk_s",
        "_lock",
        "_metric_attrs",
        "_response_attrs",
        "_start",
        "_telemetry",
        "input_messages",
        "span",
        "system_instructions",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        *,
        operation: str,
        provider: str,
        model: str | None,
        request_attrs: dict[str, Any],
        server_attrs: dict[str, Any],
    ) -> None:
        attributes: dict[str, Any] = {sc.GEN_AI_OPERATION_NAME: operation, sc.GEN_AI_PROVIDER_NAME: provider}
        if model:
            attributes[sc.GEN_AI_REQUEST_MODEL] = model
        attributes.update(request_attrs)
        attributes.update(server_attrs)
        attributes.update(current_tag_attributes())
        self._telemetry = telemetry
        self.span = telemetry.tracer.start_span(
            f"{operation} {model}" if model else operation, kind=SpanKind.CLIENT, attributes=attributes
        )
        self._start = time.perf_counter()
        self._metric_attrs = {k: attributes[k] for k in _METRIC_KEYS if k in attributes}
        self._ended = False
        self._first_chunk_s: float | None = None
        self._lock = threading.Lock()
        self.input_messages: list[Message] | None = None
        self.system_instructions: list[Part] | None = None
        self._response_attrs: dict[str, Any] = {}

    @property
    def capture(self) -> bool:
        """Whether message content is captured for this call."""
        return self._telemetry.config.capture is not ContentCapture.OFF

    def activate(self) -> object:
        """Make the span current (so HTTP child spans nest under it); pass the token to `deactivate`."""
        return otel_context.attach(trace.set_span_in_context(self.span))

    @staticmethod
    def deactivate(token: object) -> None:
        otel_context.detach(token)  # type: ignore[arg-type]

    def first_chunk(self) -> None:
        """Stamp time to first chunk (attribute, event, metric) on the first streamed chunk only."""
        if self._first_chunk_s is not None:
            return
        elapsed = time.perf_counter() - self._start
        self._first_chunk_s = elapsed
        self.span.set_attribute(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, elapsed)
        self.span.add_event(sc.EVENT_FIRST_CHUNK)
        self._telemetry.time_to_first_chunk.record(elapsed, self._metric_attrs)

    def finish(
        self, response_attrs: dict[str, Any], usage: Usage | None, outputs: list[Message] | None = None
    ) -> None:
        """End successfully with the response attributes and usage."""
        if not self._claim_end():
            return
        try:
            self._record_response(response_attrs, usage, outputs)
        finally:
            self._end(None)  # the span ends even if recording the response failed

    def fail(
        self,
        error: BaseException,
        response_attrs: dict[str, Any] | None = None,
        usage: Usage | None = None,
        outputs: list[Message] | None = None,
    ) -> None:
        """End with status ERROR and `error.type` = the exception's class name."""
        if not self._claim_end():
            return
        error_type = type(error).__name__
        try:
            self.span.set_attribute(sc.ERROR_TYPE, error_type)
            self.span.set_status(Status(StatusCode.ERROR, f"{error_type}: {error}"[:512]))
            if response_attrs or usage:
                self._record_response(response_attrs or {}, usage, outputs)
        finally:
            self._end(error_type)

    def _claim_end(self) -> bool:
        with self._lock:
            if self._ended:
                return False
            self._ended = True
            return True

    def _record_response(
        self, response_attrs: dict[str, Any], usage: Usage | None, outputs: list[Message] | None
    ) -> None:
        attributes = dict(response_attrs)
        if usage is not None:
            attributes.update(usage.attributes())
        self.span.set_attributes(attributes)
        self._response_attrs = attributes
        response_model = attributes.get(sc.GEN_AI_RESPONSE_MODEL)
        if response_model:
            self._metric_attrs[sc.GEN_AI_RESPONSE_MODEL] = response_model
        if usage is not None:
            self._record_tokens(usage)
        response_id = attributes.get(sc.GEN_AI_RESPONSE_ID)
        if isinstance(response_id, str):
            self._telemetry.responses.put(response_id, self.span.get_span_context())
        if self.capture:
            self._record_content(outputs)

    def _record_tokens(self, usage: Usage) -> None:
        for token_type, count in (
            (sc.GEN_AI_TOKEN_TYPE_INPUT, usage.input_tokens),
            (sc.GEN_AI_TOKEN_TYPE_OUTPUT, usage.output_tokens),
        ):
            if isinstance(count, int):
                self._telemetry.token_usage.record(
                    count, {**self._metric_attrs, sc.GEN_AI_TOKEN_TYPE: token_type}
                )

    def _record_content(self, outputs: list[Message] | None) -> None:
        renderer = ContentRenderer(self._telemetry.config)
        rendered: dict[str, str] = {}
        truncated = False
        for key, value in (
            (sc.GEN_AI_INPUT_MESSAGES, self.input_messages),
            (sc.GEN_AI_SYSTEM_INSTRUCTIONS, self.system_instructions),
            (sc.GEN_AI_OUTPUT_MESSAGES, outputs),
        ):
            if value:
                rendered[key], cut = renderer.render(list(value))
                truncated = truncated or cut
        capture = self._telemetry.config.capture
        if capture.on_span:
            self.span.set_attributes(rendered)
            if truncated:
                self.span.set_attribute(sc.SPANLAKE_TRUNCATED, True)
        if capture.on_event:
            self._telemetry.event_logger.emit(
                event_name=sc.EVENT_INFERENCE_DETAILS,
                attributes={**self._response_attrs, **rendered},
                context=trace.set_span_in_context(self.span),
            )

    def _end(self, error_type: str | None) -> None:
        attributes = self._metric_attrs
        if error_type is not None:
            attributes = {**attributes, sc.ERROR_TYPE: error_type}
        self._telemetry.duration.record(time.perf_counter() - self._start, attributes)
        self.span.end()
