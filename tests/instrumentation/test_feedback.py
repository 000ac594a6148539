"""Feedback and evaluation events are log records named gen_ai.evaluation.result, linked to the call."""

from __future__ import annotations

from typing import TYPE_CHECKING

import openai
import spanlake.instrumentation as sl
from spanlake.instrumentation import semconv as sc

if TYPE_CHECKING:
    from conftest import Telemetry


def test_feedback_by_response_id(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    result = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert sl.record_feedback(result.id, 1.0, comment="helpful") is True
    span = telemetry.one_span()
    (record,) = telemetry.log_records()
    log = record.log_record
    assert log.event_name == sc.EVENT_EVALUATION_RESULT
    assert (log.trace_id, log.span_id) == (span.context.trace_id, span.context.span_id)
    assert dict(log.attributes) == {
        sc.GEN_AI_EVALUATION_NAME: "user_feedback",
        sc.GEN_AI_EVALUATION_SCORE_VALUE: 1.0,
        sc.GEN_AI_EVALUATION_EXPLANATION: "helpful",
        sc.GEN_AI_RESPONSE_ID: result.id,
    }


def test_evaluation_by_span_context_and_unknown_id(
    telemetry: Telemetry, openai_client: openai.OpenAI
) -> None:
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    span = telemetry.one_span()
    assert (
        sl.record_evaluation(
            "relevance", 0.8, label="relevant", explanation="judge says so", span_context=span.context
        )
        is True
    )
    assert sl.record_feedback("chatcmpl-unknown", 0.0) is False
    linked, unlinked = (r.log_record for r in telemetry.log_records())
    assert linked.span_id == span.context.span_id
    assert linked.attributes[sc.GEN_AI_EVALUATION_SCORE_LABEL] == "relevant"
    assert unlinked.span_id in (0, None) and unlinked.event_name == sc.EVENT_EVALUATION_RESULT


def test_index_is_bounded() -> None:
    from opentelemetry.trace import INVALID_SPAN_CONTEXT
    from spanlake.instrumentation.feedback import ResponseIndex

    index = ResponseIndex(maxsize=3)
    for i in range(10):
        index.put(f"r{i}", INVALID_SPAN_CONTEXT)
    assert len(index) == 3 and index.get("r0") is None and index.get("r9") is not None


def test_not_instrumented_is_a_noop() -> None:
    assert sl.record_feedback("x", 1.0) is False
