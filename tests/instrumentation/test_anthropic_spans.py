"""anthropic through the real SDK: spans, inclusive input tokens, streams, and no double span with the
SDK's own OpenTelemetry tracing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import anthropic
import pytest
import spanlake.instrumentation as sl
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from spanlake.instrumentation import semconv as sc
from spanlake.instrumentation.fake_llm import FakeLLMServer

if TYPE_CHECKING:
    from conftest import Telemetry

TTFT_S = 0.05
MESSAGES = [{"role": "user", "content": "summarise ticket 42 please for the support team"}]
NATIVE_SCOPE = "com.anthropic.sdk.python"


def test_messages_span(telemetry: Telemetry, anthropic_client: anthropic.Anthropic) -> None:
    message = anthropic_client.messages.create(
        model="claude-haiku-4-5", max_tokens=200, messages=MESSAGES, stop_sequences=["END"], system="be brief"
    )
    span = telemetry.one_span()
    attrs = span.attributes
    assert span.name == "chat claude-haiku-4-5" and span.kind is SpanKind.CLIENT
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] == 200
    assert attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] == ("END",)
    assert attrs[sc.GEN_AI_RESPONSE_ID] == message.id
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "claude-haiku-4-5-20251001"
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    usage = message.usage
    inclusive = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == inclusive
    assert attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == usage.cache_read_input_tokens > 0
    assert attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] == usage.cache_creation_input_tokens > 0
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == usage.output_tokens
    assert sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in attrs and sc.GEN_AI_REQUEST_STREAM not in attrs


def test_max_tokens_finish_reason(telemetry: Telemetry, anthropic_client: anthropic.Anthropic) -> None:
    anthropic_client.messages.create(model="claude-opus-4-5", max_tokens=3, messages=MESSAGES)
    assert telemetry.one_span().attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("max_tokens",)


def test_stream_true(telemetry: Telemetry, anthropic_client: anthropic.Anthropic) -> None:
    stream = anthropic_client.messages.create(
        model="claude-haiku-4-5", max_tokens=200, messages=MESSAGES, stream=True
    )
    assert isinstance(stream, anthropic.Stream)
    events = list(stream)
    span = telemetry.one_span()
    attrs = span.attributes
    start = events[0].message
    assert attrs[sc.GEN_AI_REQUEST_STREAM] is True
    assert attrs[sc.GEN_AI_RESPONSE_ID] == start.id
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 11
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == events[-2].usage.output_tokens
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
    assert attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= TTFT_S
    assert [e.name for e in span.events] == [sc.EVENT_FIRST_CHUNK]


def test_stream_helper_sync_and_async(
    telemetry: Telemetry,
    anthropic_client: anthropic.Anthropic,
    async_anthropic_client: anthropic.AsyncAnthropic,
) -> None:
    manager = anthropic_client.messages.stream(model="claude-haiku-4-5", max_tokens=200, messages=MESSAGES)
    assert telemetry.finished() == []  # nothing sent before __enter__
    with manager as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    async def run() -> None:
        async with async_anthropic_client.messages.stream(
            model="claude-haiku-4-5", max_tokens=200, messages=MESSAGES
        ) as astream:
            await astream.get_final_message()

    asyncio.run(run())
    first, second = telemetry.finished()
    assert text == final.content[0].text
    assert first.attributes[sc.GEN_AI_RESPONSE_ID] == final.id
    assert first.attributes[sc.GEN_AI_REQUEST_STREAM] is True
    assert first.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
    assert second.attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= TTFT_S


def test_async_create_and_stream(
    telemetry: Telemetry, async_anthropic_client: anthropic.AsyncAnthropic
) -> None:
    async def run() -> None:
        await async_anthropic_client.messages.create(
            model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES
        )
        stream = await async_anthropic_client.messages.create(
            model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES, stream=True
        )
        async for _ in stream:
            pass

    asyncio.run(run())
    first, second = telemetry.finished()
    assert sc.GEN_AI_REQUEST_STREAM not in first.attributes
    assert second.attributes[sc.GEN_AI_REQUEST_STREAM] is True


def test_error(telemetry: Telemetry, anthropic_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError):
        anthropic_client.messages.create(model="fail-429", max_tokens=10, messages=MESSAGES)
    span = telemetry.one_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "RateLimitError"


def _native_client(fake_llm: FakeLLMServer, provider: TracerProvider) -> anthropic.Anthropic:
    """A client whose own SDK tracing is on (as it is whenever a global tracer provider exists)."""
    return anthropic.Anthropic(
        base_url=fake_llm.url, api_key="k", max_retries=0, open_telemetry={"tracer_provider": provider}
    )


def test_native_sdk_tracing_really_emits_without_spanlake(fake_llm: FakeLLMServer) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _native_client(fake_llm, provider).messages.create(
        model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES
    )
    assert [s.instrumentation_scope.name for s in exporter.get_finished_spans()] == [NATIVE_SCOPE]


def test_no_double_span_with_native_sdk_tracing(telemetry: Telemetry, fake_llm: FakeLLMServer) -> None:
    client = _native_client(fake_llm, telemetry.tracer_provider)
    client.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES)
    for _ in client.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES, stream=True):
        pass
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES) as stream:
        stream.until_done()
    scopes = [s.instrumentation_scope.name for s in telemetry.finished()]
    assert scopes == [sc.GEN_AI_INSTRUMENTATION_SCOPE] * 3


def test_native_tracing_back_after_uninstrument(
    instrumented: Callable[..., Telemetry], fake_llm: FakeLLMServer
) -> None:
    telemetry = instrumented()
    sl.uninstrument()
    _native_client(fake_llm, telemetry.tracer_provider).messages.create(
        model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES
    )
    assert [s.instrumentation_scope.name for s in telemetry.finished()] == [NATIVE_SCOPE]


def test_stream_usage_is_message_deltas_final_count() -> None:
    # message_delta's usage is cumulative and final (input and cache counts too, e.g. after server tools);
    # message_start's counts stand in only where message_delta leaves a field out.
    from spanlake.instrumentation.anthropic_wrappers import MessagesAccumulator

    start = anthropic.types.RawMessageStartEvent.model_validate({"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 0,
                  "output_tokens": 1}}})
    for delta_usage, expected in (
        ({"output_tokens": 6}, (13, 6, 3)),
        ({"output_tokens": 6, "input_tokens": 20, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 0},
         (25, 6, 5)),
    ):
        acc = MessagesAccumulator(capture=False)
        acc.process(start)
        acc.process(anthropic.types.RawMessageDeltaEvent.model_validate(
            {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
             "usage": delta_usage}))
        _attrs, usage, _outputs = acc.result()
        assert usage is not None
        assert (usage.input_tokens, usage.output_tokens, usage.cache_read) == expected


def test_with_raw_response_spans_read_the_parsed_response(
    telemetry: Telemetry, anthropic_client: anthropic.Anthropic, async_anthropic_client: anthropic.AsyncAnthropic
) -> None:
    raw = anthropic_client.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=64,
                                                              messages=MESSAGES)
    first = raw.parse()
    assert raw.parse() is first

    async def run() -> anthropic.types.Message:
        raw = await async_anthropic_client.messages.with_raw_response.create(
            model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES)
        return await raw.parse()

    second = asyncio.run(run())
    spans = [s for s in telemetry.finished() if s.instrumentation_scope.name != NATIVE_SCOPE]
    assert len(spans) == 2
    for span, message in zip(spans, (first, second)):
        attrs = span.attributes
        assert attrs[sc.GEN_AI_RESPONSE_ID] == message.id
        assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("end_turn",)
        usage = message.usage
        assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == (
            usage.input_tokens + (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0))
        assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == usage.output_tokens


def test_messages_parse_sync_and_async(
    telemetry: Telemetry, anthropic_client: anthropic.Anthropic, async_anthropic_client: anthropic.AsyncAnthropic
) -> None:
    from pydantic import BaseModel

    class Ticket(BaseModel):
        title: str
        priority: str

    first = anthropic_client.messages.parse(model="claude-haiku-4-5", max_tokens=64, messages=MESSAGES,
                                            output_format=Ticket)
    second = asyncio.run(async_anthropic_client.messages.parse(model="claude-haiku-4-5", max_tokens=64,
                                                                messages=MESSAGES, output_format=Ticket))
    assert isinstance(first.parsed_output, Ticket) and isinstance(second.parsed_output, Ticket)
    spans = [s for s in telemetry.finished() if s.instrumentation_scope.name != NATIVE_SCOPE]
    assert [s.name for s in spans] == ["chat claude-haiku-4-5"] * 2
    for span, message in zip(spans, (first, second)):
        attrs = span.attributes
        assert attrs[sc.GEN_AI_OUTPUT_TYPE] == sc.GEN_AI_OUTPUT_TYPE_JSON
        assert attrs[sc.GEN_AI_RESPONSE_ID] == message.id
        assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == message.usage.output_tokens
