"""Anthropic wire formats: `/v1/messages`, plain and SSE (message_start ... message_stop)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._catalog import Swap
from ._openai_routes import StreamItem
from ._replies import Reply, as_json, build_reply, prompt_of

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}


def messages_reply(body: dict[str, Any], forced_tokens: int | None, swap: Swap | None = None) -> Reply:
    """The reply for a Messages API request body (cache split into read and creation)."""
    messages = body.get("messages") or []
    reply = build_reply(
        model=str(body.get("model", "")),
        provider="anthropic",
        prompt=prompt_of(messages, body.get("system")),
        n_messages=len(messages),
        max_tokens=body.get("max_tokens"),
        forced_tokens=forced_tokens,
        id_prefix="msg_",
        split_cache=True,
        swap=swap,
    )
    # `messages.parse(output_format=Model)` sends output_config.format = {type: json_schema, schema}: answer JSON.
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        return as_json(reply, fmt.get("schema"))
    return reply


def _usage(reply: Reply, output_tokens: int) -> dict[str, Any]:
    # Anthropic's input_tokens EXCLUDES cache reads and writes; semconv wants the inclusive sum.
    return {
        "input_tokens": reply.input_tokens - reply.cache_read - reply.cache_creation,
        "cache_read_input_tokens": reply.cache_read,
        "cache_creation_input_tokens": reply.cache_creation,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message(reply: Reply) -> dict[str, Any]:
    """A non-streaming `message` object."""
    return {
        "id": reply.response_id,
        "type": "message",
        "role": "assistant",
        "model": reply.info.version,
        "content": [{"type": "text", "text": reply.text}],
        "stop_reason": _STOP_REASONS[reply.finish_reason],
        "stop_sequence": None,
        "usage": _usage(reply, reply.output_tokens),
    }


def message_stream(reply: Reply) -> Iterator[StreamItem]:
    """Messages SSE events in the order the real API sends them."""
    start = {**message(reply), "content": [], "stop_reason": None, "usage": _usage(reply, 1)}
    yield "message_start", {"type": "message_start", "message": start}, False
    yield (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        False,
    )
    yield "ping", {"type": "ping"}, False
    for piece in reply.pieces:
        yield (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
            True,
        )
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}, False
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": _STOP_REASONS[reply.finish_reason], "stop_sequence": None},
            # Cumulative and final, as the real API sends them (input and cache counts included).
            "usage": {k: v for k, v in _usage(reply, reply.output_tokens).items() if k != "service_tier"},
        },
        False,
    )
    yield "message_stop", {"type": "message_stop"}, False


def error_body(status: int, message_text: str) -> dict[str, Any]:
    """An Anthropic-shaped error body."""
    kind = {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}.get(
        status, "invalid_request_error"
    )
    return {"type": "error", "error": {"type": kind, "message": message_text}}
