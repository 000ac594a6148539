"""openai through the real SDK: exact span names, attribute names, types and values, and metrics."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel
from spanlake.instrumentation import semconv as sc

if TYPE_CHECKING:
    from conftest import Telemetry

TTFT_S = 0.05  # the session fake-llm server's time to first token (conftest)

MESSAGES = [{"role": "user", "content": "summarise ticket 42 please for the support team"}]


def _server(span: Any) -> tuple[str, int]:
    return span.attributes[sc.SERVER_ADDRESS], span.attributes[sc.SERVER_PORT]


def test_chat_non_stream_span(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    result = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, max_tokens=64, top_p=0.9, seed=42, stop="END"
    )
    span = telemetry.one_span()
    attrs = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attrs[sc.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert attrs[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.2 and isinstance(
        attrs[sc.GEN_AI_REQUEST_TEMPERATURE], float
    )
    assert attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] == 64 and isinstance(attrs[sc.GEN_AI_REQUEST_MAX_TOKENS], int)
    assert attrs[sc.GEN_AI_REQUEST_TOP_P] == 0.9
    assert attrs[sc.GEN_AI_REQUEST_SEED] == 42
    assert attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] == ("END",)
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18" == result.model
    assert attrs[sc.GEN_AI_RESPONSE_ID] == result.id
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == result.usage.prompt_tokens == 11
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == result.usage.completion_tokens
    assert attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 3
    assert attrs[sc.GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT] == "fp_spanlake_fake"
    assert _server(span) == ("127.0.0.1", openai_client.base_url.port)
    for absent in (
        sc.GEN_AI_REQUEST_STREAM,
        sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
        sc.GEN_AI_REQUEST_FREQUENCY_PENALTY,
        sc.GEN_AI_INPUT_MESSAGES,
        sc.GEN_AI_OUTPUT_MESSAGES,
        sc.ERROR_TYPE,
    ):
        assert absent not in attrs
    assert not span.events


def test_defaults_not_recorded(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = telemetry.one_span().attributes
    for key in (
        sc.GEN_AI_REQUEST_TEMPERATURE,
        sc.GEN_AI_REQUEST_TOP_P,
        sc.GEN_AI_REQUEST_MAX_TOKENS,
        sc.GEN_AI_REQUEST_SEED,
        sc.GEN_AI_REQUEST_CHOICE_COUNT,
    ):
        assert key not in attrs


def test_reasoning_tokens(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    result = openai_client.chat.completions.create(model="o3-mini", messages=MESSAGES)
    attrs = telemetry.one_span().attributes
    assert (
        attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS]
        == result.usage.completion_tokens_details.reasoning_tokens
    )
    assert attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] > 0


@pytest.mark.parametrize("include_usage", [True, False])
def test_chat_stream_span(telemetry: Telemetry, openai_client: openai.OpenAI, include_usage: bool) -> None:
    kwargs: dict[str, Any] = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = openai_client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True, **kwargs)
    assert isinstance(stream, openai.Stream)
    assert telemetry.finished() == []  # span open while the app reads
    chunks = list(stream)
    span = telemetry.one_span()
    attrs = span.attributes
    assert attrs[sc.GEN_AI_REQUEST_STREAM] is True
    assert attrs[sc.GEN_AI_RESPONSE_ID] == chunks[0].id
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    ttft = attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    assert isinstance(ttft, float) and TTFT_S <= ttft < TTFT_S + 1.0
    assert [e.name for e in span.events] == [sc.EVENT_FIRST_CHUNK]
    if include_usage:
        assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == chunks[-1].usage.completion_tokens
        assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 11
    else:
        assert sc.GEN_AI_USAGE_INPUT_TOKENS not in attrs
    ttft_points = telemetry.metric_points(sc.METRIC_TIME_TO_FIRST_CHUNK)
    assert len(ttft_points) == 1 and ttft_points[0].count == 1


def test_stream_helper(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    with openai_client.chat.completions.stream(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0.5
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    attrs = telemetry.one_span().attributes
    assert attrs[sc.GEN_AI_REQUEST_STREAM] is True
    assert attrs[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.5
    assert attrs[sc.GEN_AI_RESPONSE_ID] == final.id
    assert sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in attrs


def test_async_chat_and_stream(telemetry: Telemetry, async_openai_client: openai.AsyncOpenAI) -> None:
    async def run() -> None:
        await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        stream = await async_openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        assert isinstance(stream, openai.AsyncStream)
        async for _ in stream:
            pass

    asyncio.run(run())
    spans = telemetry.finished()
    assert [s.name for s in spans] == ["chat gpt-4o-mini", "chat gpt-4o-mini"]
    assert sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in spans[0].attributes
    assert spans[1].attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= TTFT_S
    assert spans[1].attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 11


def test_async_stream_helper(telemetry: Telemetry, async_openai_client: openai.AsyncOpenAI) -> None:
    async def run() -> None:
        async with async_openai_client.chat.completions.stream(
            model="gpt-4o-mini", messages=MESSAGES
        ) as stream:
            async for _ in stream:
                pass

    asyncio.run(run())
    assert telemetry.one_span().attributes[sc.GEN_AI_REQUEST_STREAM] is True


def test_responses_api(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    result = openai_client.responses.create(
        model="o4-mini", input="summarise ticket 42", max_output_tokens=500, instructions="be brief"
    )
    span = telemetry.one_span()
    attrs = span.attributes
    assert span.name == "chat o4-mini"
    assert attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] == 500
    assert attrs[sc.GEN_AI_RESPONSE_ID] == result.id
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "o4-mini-2025-04-16"
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == result.usage.input_tokens
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == result.usage.output_tokens
    assert (
        attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS]
        == result.usage.output_tokens_details.reasoning_tokens
        > 0
    )


def test_responses_stream_sync_and_async(
    telemetry: Telemetry, openai_client: openai.OpenAI, async_openai_client: openai.AsyncOpenAI
) -> None:
    events = list(openai_client.responses.create(model="gpt-4.1", input="hello there", stream=True))

    async def run() -> None:
        stream = await async_openai_client.responses.create(model="gpt-4.1", input="hello there", stream=True)
        async for _ in stream:
            pass
        await async_openai_client.responses.create(model="gpt-4.1", input="hello there")

    asyncio.run(run())
    spans = telemetry.finished()
    assert len(spans) == 3
    final = events[-1].response
    assert spans[0].attributes[sc.GEN_AI_RESPONSE_ID] == final.id
    assert spans[0].attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == final.usage.output_tokens
    assert spans[0].attributes[sc.GEN_AI_REQUEST_STREAM] is True
    assert spans[1].attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= TTFT_S
    assert sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in spans[2].attributes


def test_embeddings(
    telemetry: Telemetry, openai_client: openai.OpenAI, async_openai_client: openai.AsyncOpenAI
) -> None:
    openai_client.embeddings.create(model="text-embedding-3-small", input=["a b c", "d"], dimensions=16)
    asyncio.run(
        async_openai_client.embeddings.create(
            model="text-embedding-3-small", input="x", encoding_format="float"
        )
    )
    first, second = telemetry.finished()
    assert first.name == "embeddings text-embedding-3-small"
    assert first.attributes[sc.GEN_AI_OPERATION_NAME] == "embeddings"
    assert first.attributes[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 16
    assert first.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 4
    assert sc.GEN_AI_USAGE_OUTPUT_TOKENS not in first.attributes
    assert second.attributes[sc.GEN_AI_REQUEST_ENCODING_FORMATS] == ("float",)
    assert second.attributes[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 1536


@pytest.mark.parametrize(
    ("model", "error"), [("fail-429", openai.RateLimitError), ("fail-500", openai.InternalServerError)]
)
def test_error_span(telemetry: Telemetry, openai_client: openai.OpenAI, model: str, error: type) -> None:
    with pytest.raises(error) as raised:
        openai_client.chat.completions.create(model=model, messages=MESSAGES)
    assert type(raised.value) is error  # re-raised unchanged
    span = telemetry.one_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes[sc.ERROR_TYPE] == error.__name__
    durations = telemetry.metric_points(sc.METRIC_OPERATION_DURATION)
    assert durations[0].attributes[sc.ERROR_TYPE] == error.__name__


def test_timeout_error(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.APITimeoutError):
        openai_client.with_options(timeout=0.3).chat.completions.create(
            model="fail-timeout", messages=MESSAGES
        )
    assert telemetry.one_span().attributes[sc.ERROR_TYPE] == "APITimeoutError"


def test_async_error(telemetry: Telemetry, async_openai_client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        asyncio.run(async_openai_client.chat.completions.create(model="fail-429", messages=MESSAGES))
    assert telemetry.one_span().attributes[sc.ERROR_TYPE] == "RateLimitError"


def test_metrics(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    result = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (duration,) = telemetry.metric_points(sc.METRIC_OPERATION_DURATION)
    assert duration.count == 1 and duration.sum > 0
    assert duration.attributes == {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        sc.SERVER_ADDRESS: "127.0.0.1",
        sc.SERVER_PORT: openai_client.base_url.port,
    }
    tokens = {
        p.attributes[sc.GEN_AI_TOKEN_TYPE]: p.sum for p in telemetry.metric_points(sc.METRIC_TOKEN_USAGE)
    }
    assert tokens == {"input": result.usage.prompt_tokens, "output": result.usage.completion_tokens}
    assert telemetry.metric_points(sc.METRIC_TIME_TO_FIRST_CHUNK) == []


# --- `.parse()` helpers: posted directly (not through create), traced once ---------------------------
class Ticket(BaseModel):
    summary: str
    priority: int


def _assert_parse_span(span: Any, model: str, result: Any, input_tokens: int, output_tokens: int) -> None:
    attrs = span.attributes
    assert span.name == f"chat {model}"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert attrs[sc.GEN_AI_OPERATION_NAME] == sc.GEN_AI_OPERATION_CHAT
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == sc.GEN_AI_PROVIDER_OPENAI
    assert attrs[sc.GEN_AI_OUTPUT_TYPE] == sc.GEN_AI_OUTPUT_TYPE_JSON
    assert attrs[sc.GEN_AI_RESPONSE_ID] == result.id
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == input_tokens
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == output_tokens
    assert sc.GEN_AI_REQUEST_STREAM not in attrs


def test_chat_parse(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    result = openai_client.chat.completions.parse(
        model="gpt-4o-mini", messages=MESSAGES, response_format=Ticket, temperature=0.1
    )
    assert isinstance(result, openai.types.chat.ParsedChatCompletion)
    assert isinstance(result.choices[0].message.parsed, Ticket)
    span = telemetry.one_span()
    usage = result.usage
    _assert_parse_span(span, "gpt-4o-mini", result, usage.prompt_tokens, usage.completion_tokens)
    assert span.attributes[sc.GEN_AI_REQUEST_TEMPERATURE] == 0.1
    assert span.attributes[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"


def test_async_chat_parse(telemetry: Telemetry, async_openai_client: openai.AsyncOpenAI) -> None:
    result = asyncio.run(
        async_openai_client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Ticket)
    )
    assert isinstance(result.choices[0].message.parsed, Ticket)
    usage = result.usage
    _assert_parse_span(telemetry.one_span(), "gpt-4o", result, usage.prompt_tokens, usage.completion_tokens)


def test_responses_parse_sync_and_async(
    telemetry: Telemetry, openai_client: openai.OpenAI, async_openai_client: openai.AsyncOpenAI
) -> None:
    result = openai_client.responses.parse(model="gpt-4.1", input="summarise ticket 42", text_format=Ticket)
    aresult = asyncio.run(
        async_openai_client.responses.parse(model="gpt-4.1", input="summarise ticket 42", text_format=Ticket)
    )
    assert isinstance(result.output_parsed, Ticket) and isinstance(aresult.output_parsed, Ticket)
    spans = telemetry.finished()
    assert len(spans) == 2, [s.name for s in spans]
    for span, parsed in zip(spans, (result, aresult), strict=True):
        usage = parsed.usage
        _assert_parse_span(span, "gpt-4.1", parsed, usage.input_tokens, usage.output_tokens)


def test_parse_over_create_still_one_span(
    telemetry: Telemetry,
    openai_client: openai.OpenAI,
    async_openai_client: openai.AsyncOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An SDK version whose parse calls create must not give two spans for one request."""
    from openai.resources.chat.completions import completions as module

    def parse_via_create(resource: Any, *, response_format: Any, **kwargs: Any) -> Any:
        return resource.create(**kwargs)

    async def async_parse_via_create(resource: Any, *, response_format: Any, **kwargs: Any) -> Any:
        return await resource.create(**kwargs)

    monkeypatch.setattr(module, "parse", parse_via_create)
    monkeypatch.setattr(module, "async_parse", async_parse_via_create)
    result = openai_client.chat.completions.parse(
        model="gpt-4o-mini", messages=MESSAGES, response_format=Ticket
    )
    aresult = asyncio.run(
        async_openai_client.chat.completions.parse(
            model="gpt-4o-mini", messages=MESSAGES, response_format=Ticket
        )
    )
    spans = telemetry.finished()
    assert len(spans) == 2, [s.name for s in spans]
    for span, parsed in zip(spans, (result, aresult), strict=True):
        usage = parsed.usage
        _assert_parse_span(span, "gpt-4o-mini", parsed, usage.prompt_tokens, usage.completion_tokens)


def test_with_raw_response_spans_read_the_parsed_response(
    telemetry: Telemetry, openai_client: openai.OpenAI, async_openai_client: openai.AsyncOpenAI
) -> None:
    # Apps that read rate-limit headers (and LangChain with include_response_headers) call through
    # with_raw_response: the span must still carry the response, and the app's own parse() must get the
    # very same object.
    raw = openai_client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    first = raw.parse()
    assert raw.headers.get("content-type", "").startswith("application/json") and raw.parse() is first

    async def run() -> Any:
        raw = await async_openai_client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES)
        return raw.parse()

    second = asyncio.run(run())
    spans = telemetry.finished()
    assert len(spans) == 2
    for span, result in zip(spans, (first, second)):
        attrs = span.attributes
        assert attrs[sc.GEN_AI_RESPONSE_ID] == result.id
        assert attrs[sc.GEN_AI_RESPONSE_MODEL] == result.model
        assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == result.usage.prompt_tokens == 11
        assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == result.usage.completion_tokens
        assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


def test_with_streaming_response_leaves_the_body_to_the_app(
    telemetry: Telemetry, openai_client: openai.OpenAI
) -> None:
    with openai_client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES) as response:
        body = b"".join(response.iter_bytes())
    assert b'"chat.completion"' in body  # the app read the whole body itself
    span = telemetry.one_span()
    assert span.attributes[sc.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert sc.GEN_AI_RESPONSE_ID not in span.attributes
