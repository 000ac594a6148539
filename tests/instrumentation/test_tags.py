"""Tags reach every GenAI span inside the scope: nested, decorated, across threads, tasks and services."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import openai
import spanlake.instrumentation as sl
from opentelemetry import context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from spanlake.instrumentation import semconv as sc

if TYPE_CHECKING:
    from conftest import Telemetry

MESSAGES = [{"role": "user", "content": "hi"}]


def _call(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def test_known_and_custom_tags(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    with sl.tags(
        feature="ticket-summary",
        prompt_name="summarise",
        prompt_version="v3",
        user_id="user-123",
        session_id="sess-456",
        conversation_id="conv-1",
        team="support",
        tier=2,
        skip=None,
    ):
        _call(openai_client)
    attrs = telemetry.one_span().attributes
    assert attrs[sc.SPANLAKE_FEATURE] == "ticket-summary"
    assert attrs[sc.GEN_AI_PROMPT_NAME] == "summarise"
    assert attrs[sc.GEN_AI_PROMPT_VERSION] == "v3"
    assert attrs[sc.USER_ID] == "user-123"
    assert attrs[sc.SESSION_ID] == "sess-456"
    assert attrs[sc.GEN_AI_CONVERSATION_ID] == "conv-1"
    assert attrs[sc.SPANLAKE_TAG_PREFIX + "team"] == "support"
    assert attrs[sc.SPANLAKE_TAG_PREFIX + "tier"] == 2  # typed value kept locally
    assert sc.SPANLAKE_TAG_PREFIX + "skip" not in attrs


def test_nesting_and_scope_end(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    with sl.tags(feature="outer", user_id="u1"):
        with sl.tags(feature="inner"):
            _call(openai_client)
        _call(openai_client)
    _call(openai_client)
    inner, outer, none = (s.attributes for s in telemetry.finished())
    assert (inner[sc.SPANLAKE_FEATURE], inner[sc.USER_ID]) == ("inner", "u1")
    assert outer[sc.SPANLAKE_FEATURE] == "outer"
    assert sc.SPANLAKE_FEATURE not in none and sc.USER_ID not in none


def test_decorator_sync_and_async(
    telemetry: Telemetry, openai_client: openai.OpenAI, async_openai_client: openai.AsyncOpenAI
) -> None:
    @sl.tags(feature="sync-feature")
    def sync_handler() -> str:
        _call(openai_client)
        return "ok"

    @sl.tags(feature="async-feature")
    async def async_handler() -> str:
        await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return "ok"

    assert sync_handler() == "ok" and sync_handler.__name__ == "sync_handler"
    assert asyncio.run(async_handler()) == "ok"
    assert [s.attributes[sc.SPANLAKE_FEATURE] for s in telemetry.finished()] == [
        "sync-feature",
        "async-feature",
    ]


def test_threads_with_context_and_asyncio_tasks(
    telemetry: Telemetry, openai_client: openai.OpenAI, async_openai_client: openai.AsyncOpenAI
) -> None:
    import contextvars

    with sl.tags(feature="threaded"), ThreadPoolExecutor(max_workers=2) as pool:
        ctx = contextvars.copy_context()
        pool.submit(ctx.run, _call, openai_client).result(timeout=10)

    async def one(feature: str) -> None:
        with sl.tags(feature=feature):
            await asyncio.sleep(0.01)
            await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    async def many() -> None:
        with sl.tags(user_id="shared"):
            await asyncio.gather(*(asyncio.create_task(one(f"task-{i}")) for i in range(3)))

    asyncio.run(many())
    spans = telemetry.finished()
    assert spans[0].attributes[sc.SPANLAKE_FEATURE] == "threaded"
    features = sorted(s.attributes[sc.SPANLAKE_FEATURE] for s in spans[1:])
    assert features == ["task-0", "task-1", "task-2"]
    assert {s.attributes[sc.USER_ID] for s in spans[1:]} == {"shared"}


def test_tags_cross_service_boundary_via_w3c_baggage(
    telemetry: Telemetry, openai_client: openai.OpenAI
) -> None:
    carrier: dict[str, str] = {}
    with sl.tags(feature="upstream-feature", user_id="u9", region="eu"):
        W3CBaggagePropagator().inject(carrier)
    assert "baggage" in carrier
    # "Downstream service": a fresh context extracted from the incoming header.
    token = context.attach(W3CBaggagePropagator().extract(carrier, context=context.Context()))
    try:
        _call(openai_client)
    finally:
        context.detach(token)
    attrs = telemetry.one_span().attributes
    assert attrs[sc.SPANLAKE_FEATURE] == "upstream-feature"
    assert attrs[sc.USER_ID] == "u9"
    assert attrs[sc.SPANLAKE_TAG_PREFIX + "region"] == "eu"
