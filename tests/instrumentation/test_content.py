"""Content capture: off by default, on by argument or env var, semconv parts shape, redacted, capped."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anthropic
import openai
import pytest
from spanlake.instrumentation import semconv as sc
from spanlake.instrumentation.config import (
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT,
    ContentCapture,
    load_config,
)
from spanlake.instrumentation.redact import default_redactor

if TYPE_CHECKING:
    from conftest import Telemetry

SECRET = "mail jane.doe@example.com, call +1 415 555 0100, card 4242 4242 4242 4242, key sk-proj-ABCDEFGHIJKLMNOP1234"


def test_off_by_default(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    attrs = telemetry.one_span().attributes
    assert not any(
        k in attrs
        for k in (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS)
    )
    assert telemetry.log_records() == []


def test_chat_messages_parts_shape(instrumented: Any, openai_client: openai.OpenAI) -> None:
    telemetry = instrumented(capture_content=True)
    result = openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}],
    )
    attrs = telemetry.one_span().attributes
    assert isinstance(attrs[sc.GEN_AI_INPUT_MESSAGES], str)
    assert json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "hello"}]},
    ]
    assert json.loads(attrs[sc.GEN_AI_OUTPUT_MESSAGES]) == [
        {
            "role": "assistant",
            "finish_reason": "stop",
            "parts": [{"type": "text", "content": result.choices[0].message.content}],
        }
    ]


def test_stream_output_and_anthropic_system(
    instrumented: Any, openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    telemetry = instrumented(capture_content=True)
    text = "".join(
        c.choices[0].delta.content or ""
        for c in openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        if c.choices
    )
    message = anthropic_client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=100,
        system="be brief",
        messages=[{"role": "user", "content": "hello"}],
    )
    chat, claude = (s.attributes for s in telemetry.finished())
    assert json.loads(chat[sc.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == text
    assert json.loads(claude[sc.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "be brief"}]
    output = json.loads(claude[sc.GEN_AI_OUTPUT_MESSAGES])[0]
    # the output message's finish reason is in the semconv enum; the span attribute keeps end_turn
    assert output["parts"][0]["content"] == message.content[0].text and output["finish_reason"] == "stop"


def test_env_var_enables_and_default_redactor_applies(
    monkeypatch: pytest.MonkeyPatch, instrumented: Any, openai_client: openai.OpenAI
) -> None:
    monkeypatch.setenv(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT, "span_and_event")
    telemetry = instrumented()
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": SECRET}])
    span = telemetry.one_span()
    captured = json.loads(span.attributes[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"]
    assert captured == (
        "mail [REDACTED_EMAIL], call [REDACTED_PHONE], card [REDACTED_CARD], key [REDACTED_API_KEY]"
    )
    (record,) = telemetry.log_records()
    assert record.log_record.event_name == sc.EVENT_INFERENCE_DETAILS
    assert record.log_record.span_id == span.context.span_id
    assert "jane.doe" not in record.log_record.attributes[sc.GEN_AI_INPUT_MESSAGES]


def test_custom_redactor_and_size_cap(instrumented: Any, openai_client: openai.OpenAI) -> None:
    telemetry = instrumented(capture_content=True, redactor=str.upper, max_content_chars=100)
    openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x" * 500}]
    )
    attrs = telemetry.one_span().attributes
    content = json.loads(attrs[sc.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"]
    assert content.startswith("X" * 100) and content.endswith("[spanlake: truncated 400 chars]")
    assert attrs[sc.SPANLAKE_TRUNCATED] is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", ContentCapture.SPAN),
        ("span_only", ContentCapture.SPAN),
        ("event_only", ContentCapture.EVENT),
        ("SPAN_AND_EVENT", ContentCapture.SPAN_AND_EVENT),
        ("false", ContentCapture.OFF),
        ("bogus", ContentCapture.OFF),
    ],
)
def test_env_values(value: str, expected: ContentCapture) -> None:
    config = load_config(environ={OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: value})
    assert config.capture is expected


def test_argument_beats_env() -> None:
    config = load_config(
        capture_content=False, environ={OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: "true"}
    )
    assert config.capture is ContentCapture.OFF


@pytest.mark.parametrize("text", ["order 12345 shipped in 2024", "version 3.2.1", "call me maybe"])
def test_redactor_leaves_plain_text(text: str) -> None:
    assert default_redactor(text) == text


def test_redactor_card_needs_luhn() -> None:
    assert default_redactor("4242 4242 4242 4241") == "4242 4242 4242 4241"
    assert default_redactor("ghp_" + "a" * 36) == "[REDACTED_API_KEY]"
