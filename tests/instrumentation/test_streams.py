"""Streams are never disturbed, and their span ends exactly once on every exit path."""

from __future__ import annotations

import asyncio
import gc
from typing import TYPE_CHECKING, Any

import anthropic
import openai
import pytest
from openai.lib.streaming.chat import (
    AsyncChatCompletionStream,
    AsyncChatCompletionStreamManager,
    ChatCompletionStream,
    ChatCompletionStreamManager,
)
from openai.lib.streaming.responses import AsyncResponseStreamManager, ResponseStreamManager
from opentelemetry.trace import StatusCode
from spanlake.instrumentation import semconv as sc
from spanlake.instrumentation.fake_llm import TOKENS_HEADER

if TYPE_CHECKING:
    from conftest import Telemetry

MESSAGES = [{"role": "user", "content": "stream me a long answer about the checkout ticket"}]


def _stream(client: openai.OpenAI, **kwargs: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **kwargs)


def test_chunks_identical_to_uninstrumented(instrumented: Any, openai_client: openai.OpenAI) -> None:
    plain = [c.model_dump(exclude={"id", "created"}) for c in _stream(openai_client)]
    telemetry = instrumented()
    stream = _stream(openai_client)
    assert isinstance(stream, openai.Stream) and hasattr(stream, "response")
    traced = [c.model_dump(exclude={"id", "created"}) for c in stream]
    assert traced == plain
    assert len(telemetry.finished()) == 1


def test_early_break_then_close(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    stream = _stream(openai_client, extra_headers={TOKENS_HEADER: "50"})
    for index, _ in enumerate(stream):
        if index == 2:
            break
    assert telemetry.finished() == []
    stream.close()
    stream.close()  # idempotent
    span = telemetry.one_span()
    assert span.status.status_code is StatusCode.UNSET
    assert sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in span.attributes
    assert span.attributes[sc.GEN_AI_RESPONSE_ID].startswith("chatcmpl-")


def test_abandoned_stream_ends_on_gc(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    stream = _stream(openai_client)
    next(stream)
    del stream
    gc.collect()
    assert len(telemetry.finished()) == 1


def test_context_manager_returns_proxy(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    with _stream(openai_client) as stream:
        assert isinstance(stream, openai.Stream)
        first = next(stream)
    assert first.choices[0].delta.role == "assistant"
    span = telemetry.one_span()
    assert span.attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0


def test_midstream_error_reraised_and_recorded(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    stream = openai_client.chat.completions.create(model="fail-midstream", messages=MESSAGES, stream=True)
    received = 0
    with pytest.raises(openai.APIConnectionError):
        for _ in stream:
            received += 1
    assert received > 0
    span = telemetry.one_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == "APIConnectionError"


def test_exhausted_then_closed_ends_once(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    stream = _stream(openai_client)
    list(stream)
    stream.close()
    del stream
    gc.collect()
    assert len(telemetry.finished()) == 1
    (duration,) = telemetry.metric_points(sc.METRIC_OPERATION_DURATION)
    assert duration.count == 1


def test_async_early_close_and_abandon(telemetry: Telemetry, async_openai_client: openai.AsyncOpenAI) -> None:
    async def run() -> None:
        stream = await async_openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        async for _ in stream:
            break
        await stream.close()
        abandoned = await async_openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        await abandoned.__anext__()
        del abandoned
        gc.collect()
        async with await async_openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        ) as managed:
            async for _ in managed:
                pass

    asyncio.run(run())
    assert len(telemetry.finished()) == 3


def test_anthropic_early_close(telemetry: Telemetry, anthropic_client: anthropic.Anthropic) -> None:
    with anthropic_client.messages.stream(
        model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES
    ) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break
    span = telemetry.one_span()
    assert span.attributes[sc.GEN_AI_RESPONSE_ID].startswith("msg_")
    assert sc.GEN_AI_RESPONSE_FINISH_REASONS not in span.attributes  # never reached message_delta


def test_streaming_many_chunks_unbuffered(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    stream = _stream(openai_client, extra_headers={TOKENS_HEADER: "200"})
    first = next(stream)
    assert telemetry.finished() == []  # the span is still open: nothing was read ahead
    assert first.choices[0].delta.content is not None
    rest = list(stream)
    assert len(rest) == 200  # 199 content chunks + the finish chunk
    assert len(telemetry.finished()) == 1


# --- `.stream()` helpers: leaving the `with` block ends the span, not the garbage collector -------------
def _ended_now(telemetry: Telemetry) -> list[Any]:
    """Finished spans without a gc pass, so the garbage collector cannot be what ended them."""
    return list(telemetry.spans.get_finished_spans())


def _assert_left_early(span: Any, model: str, response_id: str) -> None:
    attrs = span.attributes
    assert span.name == f"chat {model}"
    assert span.status.status_code is StatusCode.UNSET  # stopping reading is not an error
    assert attrs[sc.GEN_AI_REQUEST_STREAM] is True
    assert attrs[sc.GEN_AI_RESPONSE_ID] == response_id
    assert attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert sc.GEN_AI_RESPONSE_FINISH_REASONS not in attrs  # the stream was not read to the end
    assert sc.ERROR_TYPE not in attrs


def test_chat_stream_helper_early_exit_ends_span_at_exit(
    telemetry: Telemetry, openai_client: openai.OpenAI
) -> None:
    manager = openai_client.chat.completions.stream(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={TOKENS_HEADER: "50"}
    )
    assert isinstance(manager, ChatCompletionStreamManager)
    with manager as stream:
        for event in stream:
            break
        assert _ended_now(telemetry) == []
    (span,) = _ended_now(telemetry)  # `stream` and `manager` still hold the stream proxy
    assert isinstance(stream, ChatCompletionStream)
    _assert_left_early(span, "gpt-4o-mini", event.chunk.id)
    (duration,) = telemetry.metric_points(sc.METRIC_OPERATION_DURATION)
    assert duration.count == 1


def test_async_chat_stream_helper_early_exit_ends_span_at_exit(
    telemetry: Telemetry, async_openai_client: openai.AsyncOpenAI
) -> None:
    async def run() -> tuple[Any, Any, list[Any]]:
        manager = async_openai_client.chat.completions.stream(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={TOKENS_HEADER: "50"}
        )
        assert isinstance(manager, AsyncChatCompletionStreamManager)
        async with manager as stream:
            async for event in stream:
                break
            assert _ended_now(telemetry) == []
        return stream, event, _ended_now(telemetry)

    stream, event, ended = asyncio.run(run())
    assert isinstance(stream, AsyncChatCompletionStream)
    (span,) = ended
    _assert_left_early(span, "gpt-4o-mini", event.chunk.id)


def test_responses_stream_helper_early_exit_sync_and_async(
    telemetry: Telemetry, openai_client: openai.OpenAI, async_openai_client: openai.AsyncOpenAI
) -> None:
    manager = openai_client.responses.stream(model="gpt-4.1", input="stream me a long answer")
    assert isinstance(manager, ResponseStreamManager)
    with manager as stream:
        for first in stream:
            break
    (span,) = _ended_now(telemetry)
    _assert_left_early(span, "gpt-4.1", first.response.id)

    async def run() -> tuple[Any, Any, list[Any]]:
        amanager = async_openai_client.responses.stream(model="gpt-4.1", input="stream me a long answer")
        assert isinstance(amanager, AsyncResponseStreamManager)
        async with amanager as astream:
            async for event in astream:
                break
        return astream, event, _ended_now(telemetry)

    astream, event, ended = asyncio.run(run())
    assert stream is not None and astream is not None
    assert len(ended) == 2
    _assert_left_early(ended[1], "gpt-4.1", event.response.id)


def test_responses_stream_helper_read_to_the_end(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    with openai_client.responses.stream(model="gpt-4.1", input="hello there") as stream:
        final = stream.get_final_response()
    attrs = telemetry.one_span().attributes
    assert attrs[sc.GEN_AI_RESPONSE_ID] == final.id
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
    assert attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert [e.name for e in telemetry.one_span().events] == [sc.EVENT_FIRST_CHUNK]


def test_stream_helper_error_in_block_recorded(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    manager = openai_client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES)
    with pytest.raises(ValueError, match="app bug"), manager as stream:
        next(iter(stream))
        raise ValueError("app bug")
    (span,) = _ended_now(telemetry)
    assert span.status.status_code is StatusCode.ERROR  # as `with create(stream=True)` records it
    assert span.attributes[sc.ERROR_TYPE] == "ValueError"


def test_anthropic_stream_helper_early_exit_sync_and_async(
    telemetry: Telemetry,
    anthropic_client: anthropic.Anthropic,
    async_anthropic_client: anthropic.AsyncAnthropic,
) -> None:
    with anthropic_client.messages.stream(
        model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES
    ) as stream:
        for first in stream:
            break
    (span,) = _ended_now(telemetry)
    _assert_left_early(span, "claude-haiku-4-5", first.message.id)

    async def run() -> tuple[Any, Any, list[Any]]:
        async with async_anthropic_client.messages.stream(
            model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES
        ) as astream:
            async for event in astream:
                break
        return astream, event, _ended_now(telemetry)

    astream, event, ended = asyncio.run(run())
    assert stream is not None and astream is not None
    assert len(ended) == 2
    _assert_left_early(ended[1], "claude-haiku-4-5", event.message.id)
