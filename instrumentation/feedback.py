"""User feedback and evaluation scores as `gen_ai.evaluation.result` events linked to the LLM call.

A small bounded LRU map (response id -> span context) lets feedback that arrives later, knowing only
the provider's response id, still point at the call's trace and span.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext

from . import _state
from . import semconv as sc
from ._safety import report_internal_error

logger = logging.getLogger(__name__)

DEFAULT_INDEX_SIZE = 4096


class ResponseIndex:
    """Thread-safe LRU of the last `maxsize` response ids and their span contexts."""

    def __init__(self, maxsize: int = DEFAULT_INDEX_SIZE) -> None:
        self._maxsize = maxsize
        self._items: OrderedDict[str, SpanContext] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, response_id: str, span_context: SpanContext) -> None:
        with self._lock:
            self._items[response_id] = span_context
            self._items.move_to_end(response_id)
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)

    def get(self, response_id: str) -> SpanContext | None:
        with self._lock:
            return self._items.get(response_id)

    def __len__(self) -> int:
        return len(self._items)


def _span_context_of(target: str | SpanContext | Span | None) -> tuple[SpanContext | None, str | None]:
    """(span context, response id) for a feedback target."""
    if isinstance(target, Span):
        return target.get_span_context(), None
    if isinstance(target, SpanContext):
        return target, None
    if isinstance(target, str):
        telemetry = _state.active()
        return (telemetry.responses.get(target) if telemetry else None), target
    return None, None


def record_evaluation(
    name: str,
    score: float | None,
    label: str | None = None,
    explanation: str | None = None,
    *,
    response_id: str | None = None,
    span_context: SpanContext | Span | None = None,
) -> bool:
    """Emit a `gen_ai.evaluation.result` event; returns True when it is linked to a known call.

    Linked means the log record carries the call's trace and span id (from `span_context`, or looked up
    from `response_id` among recent calls). Never raises.
    """
    telemetry = _state.active()
    if telemetry is None:
        logger.debug("record_evaluation called while not instrumented; dropped")
        return False
    try:
        context, _ = _span_context_of(span_context if span_context is not None else response_id)
        attributes: dict[str, Any] = {sc.GEN_AI_EVALUATION_NAME: name}
        if score is not None:
            attributes[sc.GEN_AI_EVALUATION_SCORE_VALUE] = float(score)
        if label is not None:
            attributes[sc.GEN_AI_EVALUATION_SCORE_LABEL] = label
        if explanation is not None:
            attributes[sc.GEN_AI_EVALUATION_EXPLANATION] = explanation
        if response_id is not None:
            attributes[sc.GEN_AI_RESPONSE_ID] = response_id
        linked = context is not None and context.is_valid
        otel_context = trace.set_span_in_context(NonRecordingSpan(context)) if linked else None
        telemetry.event_logger.emit(
            event_name=sc.EVENT_EVALUATION_RESULT, attributes=attributes, context=otel_context
        )
        return linked
    except Exception:  # noqa: BLE001 - boundary: feedback must never break the app
        report_internal_error("record_evaluation")
        return False


def record_feedback(
    response_id_or_span_context: str | SpanContext | Span,
    score: float,
    comment: str | None = None,
    *,
    label: str | None = None,
) -> bool:
    """End-user feedback (thumbs = 1.0/0.0, or any score) as an evaluation named `user_feedback`."""
    target = response_id_or_span_context
    if isinstance(target, str):
        return record_evaluation(
            sc.GEN_AI_EVALUATION_USER_FEEDBACK, score, label, comment, response_id=target
        )
    return record_evaluation(sc.GEN_AI_EVALUATION_USER_FEEDBACK, score, label, comment, span_context=target)
