"""The fake-llm server answers the real SDKs deterministically, streams, and injects failures."""

from __future__ import annotations

import json
import time
from typing import Literal

import anthropic
import openai
import pytest
from pydantic import BaseModel
from spanlake.instrumentation.fake_llm import FAIL_HEADER, TOKENS_HEADER, FakeLLMServer, serve

MESSAGES = [{"role": "user", "content": "summarise ticket 42 please for the support team"}]


def test_chat_is_deterministic_with_dated_model_and_cached_usage(openai_client: openai.OpenAI) -> None:
    first = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    second = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.model == "gpt-4o-mini-2024-07-18"
    assert first.system_fingerprint
    assert first.usage is not None and first.usage.prompt_tokens == 11
    assert first.usage.prompt_tokens_details is not None
    assert first.usage.prompt_tokens_details.cached_tokens == 3
    assert first.usage.completion_tokens == len(first.choices[0].message.content.split())


def test_output_length_varies_by_model(openai_client: openai.OpenAI) -> None:
    lengths = {
        m: openai_client.chat.completions.create(model=m, messages=MESSAGES).usage.completion_tokens
        for m in ("gpt-4o-mini", "gpt-4o", "gpt-4.1")
    }
    assert len(set(lengths.values())) > 1


def test_o_series_reports_reasoning_tokens(openai_client: openai.OpenAI) -> None:
    result = openai_client.chat.completions.create(model="o3-mini", messages=MESSAGES)
    details = result.usage.completion_tokens_details
    assert details is not None and details.reasoning_tokens and details.reasoning_tokens > 0


def test_stream_with_usage_and_ttft(openai_client: openai.OpenAI) -> None:
    started = time.perf_counter()
    stream = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    first_delay = time.perf_counter() - started
    assert first_delay >= 0.05
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_forced_token_count_header(openai_client: openai.OpenAI) -> None:
    stream = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers={TOKENS_HEADER: "200"}
    )
    content_chunks = [c for c in stream if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == 200


def test_anthropic_usage_splits_cache(anthropic_client: anthropic.Anthropic) -> None:
    message = anthropic_client.messages.create(model="claude-haiku-4-5", max_tokens=200, messages=MESSAGES)
    assert message.model == "claude-haiku-4-5-20251001"
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (6, 3, 2)


def test_anthropic_stream_event_order(anthropic_client: anthropic.Anthropic) -> None:
    events = [
        e.type
        for e in anthropic_client.messages.create(
            model="claude-haiku-4-5", max_tokens=200, messages=MESSAGES, stream=True
        )
    ]
    assert events[:2] == ["message_start", "content_block_start"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_errors_by_model_name_and_header(
    openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    with pytest.raises(openai.RateLimitError) as rate_limited:
        openai_client.chat.completions.create(model="fail-429", messages=MESSAGES)
    assert rate_limited.value.response.headers["retry-after"] == "2"
    with pytest.raises(openai.InternalServerError):
        openai_client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, extra_headers={FAIL_HEADER: "500"}
        )
    with pytest.raises(anthropic.RateLimitError):
        anthropic_client.messages.create(model="fail-429", max_tokens=10, messages=MESSAGES)
    with pytest.raises(openai.APITimeoutError):
        openai_client.with_options(timeout=0.3).chat.completions.create(
            model="fail-timeout", messages=MESSAGES
        )


class Step(BaseModel):
    note: str
    done: bool


class Plan(BaseModel):
    title: str
    steps: list[Step]
    priority: int | None
    kind: Literal["bug", "feature"]


def test_json_schema_output_parses(openai_client: openai.OpenAI) -> None:
    chat = openai_client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Plan)
    plan = chat.choices[0].message.parsed
    assert isinstance(plan, Plan) and plan.kind == "bug" and plan.steps[0].done is True
    assert chat.usage.completion_tokens == len(chat.choices[0].message.content.split(" "))
    stream = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, response_format={"type": "json_object"}
    )
    assert json.loads("".join(c.choices[0].delta.content or "" for c in stream if c.choices))["answer"]
    response = openai_client.responses.parse(model="gpt-4.1", input="plan ticket 42", text_format=Plan)
    assert isinstance(response.output_parsed, Plan)


def test_embeddings_and_models(openai_client: openai.OpenAI) -> None:
    result = openai_client.embeddings.create(model="text-embedding-3-small", input=["a b", "c"], dimensions=8)
    assert [len(d.embedding) for d in result.data] == [8, 8]
    assert "gpt-4o-mini" in {m.id for m in openai_client.models.list()}


def test_port_zero_and_shutdown() -> None:
    server: FakeLLMServer = serve(port=0, ttft_s=0, token_delay_s=0)
    host, port = server.server_address[:2]
    assert host == "127.0.0.1" and port > 0
    server.shutdown()


def test_silent_model_swap_changes_response_model_fingerprint_and_length() -> None:
    from spanlake.instrumentation.fake_llm import parse_swap

    swap = parse_swap("gpt-4o-2024-08-06=gpt-4o-2024-11-20*2@0.3")
    assert (swap.request_model, swap.response_model, swap.verbosity, swap.after_s) == (
        "gpt-4o-2024-08-06", "gpt-4o-2024-11-20", 2.0, 0.3)
    server = serve(port=0, ttft_s=0, token_delay_s=0, swaps=(swap,))
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0, timeout=5)
        ask = {"model": "gpt-4o-2024-08-06", "messages": MESSAGES, "extra_headers": {TOKENS_HEADER: "10"}}
        before = client.chat.completions.create(**ask)
        time.sleep(0.35)
        after = client.chat.completions.create(**ask)
    finally:
        server.shutdown()
    assert before.model == "gpt-4o-2024-08-06" and after.model == "gpt-4o-2024-11-20"
    assert before.system_fingerprint != after.system_fingerprint
    assert (before.usage.completion_tokens, after.usage.completion_tokens) == (10, 20)
    with pytest.raises(ValueError):
        parse_swap("no-equals-sign")
