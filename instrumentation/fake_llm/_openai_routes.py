"""OpenAI wire formats: chat completions, Responses API, embeddings and models, plain and SSE.

Stream builders yield `(event_name, data, is_token)`; the server decides the timing of token events.
"""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import Iterator
from typing import Any

from . import _catalog
from ._catalog import DEFAULT_FINGERPRINT, Swap
from ._replies import Reply, as_json, build_reply, prompt_of

StreamItem = tuple[str | None, Any, bool]

SYSTEM_FINGERPRINT = DEFAULT_FINGERPRINT


def chat_reply(body: dict[str, Any], forced_tokens: int | None, swap: Swap | None = None) -> Reply:
    """The reply for a chat completions request body."""
    messages = body.get("messages") or []
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    reply = build_reply(
        model=str(body.get("model", "")),
        provider="openai",
        prompt=prompt_of(messages),
        n_messages=len(messages),
        max_tokens=limit,
        forced_tokens=forced_tokens,
        id_prefix="chatcmpl-",
        swap=swap,
    )
    fmt = body.get("response_format")
    return _structured(reply, fmt, fmt.get("json_schema") if isinstance(fmt, dict) else None)


def _structured(reply: Reply, fmt: Any, schema_holder: Any) -> Reply:
    """A `json_schema` / `json_object` output format makes the reply JSON (so the SDKs' `parse` works)."""
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_schema", "json_object"):
        return reply
    schema = schema_holder.get("schema") if isinstance(schema_holder, dict) else None
    return as_json(reply, schema)


def _chat_usage(reply: Reply) -> dict[str, Any]:
    completion = reply.output_tokens + reply.reasoning
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": completion,
        "total_tokens": reply.input_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": reply.cache_read, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reply.reasoning, "audio_tokens": 0},
    }


def chat_completion(reply: Reply) -> dict[str, Any]:
    """A non-streaming `chat.completion` object."""
    return {
        "id": reply.response_id,
        "object": "chat.completion",
        "created": reply.created,
        "model": reply.info.version,
        "system_fingerprint": reply.fingerprint,
        "service_tier": "default",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None},
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": _chat_usage(reply),
    }


def chat_stream(reply: Reply, include_usage: bool) -> Iterator[StreamItem]:
    """`chat.completion.chunk` events; a last usage-only chunk when `include_usage` was asked."""

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": reply.response_id,
            "object": "chat.completion.chunk",
            "created": reply.created,
            "model": reply.info.version,
            "system_fingerprint": reply.fingerprint,
            "service_tier": "default",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    for i, piece in enumerate(reply.pieces):
        delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
        yield None, chunk(delta, None), True
    yield None, chunk({}, reply.finish_reason), False
    if include_usage:
        last = chunk({}, None)
        last["choices"] = []
        last["usage"] = _chat_usage(reply)
        yield None, last, False
    yield None, "[DONE]", False


def responses_reply(body: dict[str, Any], forced_tokens: int | None, swap: Swap | None = None) -> Reply:
    """The reply for a Responses API request body."""
    raw_input = body.get("input")
    n_messages = len(raw_input) if isinstance(raw_input, list) else 1
    reply = build_reply(
        model=str(body.get("model", "")),
        provider="openai",
        prompt=prompt_of(raw_input, body.get("instructions")),
        n_messages=n_messages,
        max_tokens=body.get("max_output_tokens"),
        forced_tokens=forced_tokens,
        id_prefix="resp_",
        swap=swap,
    )
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    return _structured(reply, fmt, fmt)


def _response_object(reply: Reply, body: dict[str, Any], *, done: bool) -> dict[str, Any]:
    status = ("completed" if reply.finish_reason == "stop" else "incomplete") if done else "in_progress"
    output = [_output_message(reply, done)] if done else []
    return {
        "id": reply.response_id,
        "object": "response",
        "created_at": reply.created,
        "status": status,
        "model": reply.info.version,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "max_output_tokens": body.get("max_output_tokens"),
        "instructions": body.get("instructions"),
        "error": None,
        "metadata": {},
        "incomplete_details": None if status != "incomplete" else {"reason": "max_output_tokens"},
        "usage": _responses_usage(reply) if done else None,
    }


def _output_message(reply: Reply, done: bool) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_" + reply.response_id[5:],
        "role": "assistant",
        "status": "completed" if done else "in_progress",
        "content": [{"type": "output_text", "text": reply.text if done else "", "annotations": []}],
    }


def _responses_usage(reply: Reply) -> dict[str, Any]:
    output = reply.output_tokens + reply.reasoning
    return {
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": reply.cache_read},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning},
        "total_tokens": reply.input_tokens + output,
    }


def response(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    """A non-streaming Responses API `response` object."""
    return _response_object(reply, body, done=True)


def response_stream(reply: Reply, body: dict[str, Any]) -> Iterator[StreamItem]:
    """Responses API SSE events, from `response.created` to `response.completed`."""
    seq = iter(range(1_000_000))
    item_id = "msg_" + reply.response_id[5:]

    def ev(kind: str, token: bool = False, **fields: Any) -> StreamItem:
        return kind, {"type": kind, "sequence_number": next(seq), **fields}, token

    started = _response_object(reply, body, done=False)
    yield ev("response.created", response=started)
    yield ev("response.in_progress", response=started)
    yield ev("response.output_item.added", output_index=0, item=_output_message(reply, False))
    part = {"type": "output_text", "text": "", "annotations": []}
    yield ev("response.content_part.added", item_id=item_id, output_index=0, content_index=0, part=part)
    for piece in reply.pieces:
        yield ev(
            "response.output_text.delta",
            True,
            item_id=item_id,
            output_index=0,
            content_index=0,
            delta=piece,
            logprobs=[],
        )
    yield ev(
        "response.output_text.done",
        item_id=item_id,
        output_index=0,
        content_index=0,
        text=reply.text,
        logprobs=[],
    )
    yield ev(
        "response.content_part.done",
        item_id=item_id,
        output_index=0,
        content_index=0,
        part={**part, "text": reply.text},
    )
    yield ev("response.output_item.done", output_index=0, item=_output_message(reply, True))
    final = _response_object(reply, body, done=True)
    yield ev(
        "response.completed" if final["status"] == "completed" else "response.incomplete", response=final
    )


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """An embeddings list; base64 when asked (the openai SDK asks for base64 by default)."""
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else [str(x) for x in (raw or [])]
    info = _catalog.lookup(str(body.get("model", "")), "openai")
    dims = int(body.get("dimensions") or info.embedding_dims or 256)
    data = []
    for i, text in enumerate(texts):
        vector: Any = _catalog.embedding(text, dims)
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": vector})
    tokens = sum(_catalog.count_tokens(t) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": info.version,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def models() -> dict[str, Any]:
    """`GET /v1/models`: every catalog model."""
    now = int(time.time())
    data = [
        {"id": m.alias, "object": "model", "created": now, "owned_by": m.provider}
        for m in _catalog.MODELS.values()
    ]
    return {"object": "list", "data": data}


def error_body(status: int, message: str) -> dict[str, Any]:
    """An OpenAI-shaped error body."""
    code = {429: "rate_limit_exceeded", 500: "server_error"}.get(status, "invalid_request_error")
    return {
        "error": {
            "message": message,
            "type": code,
            "param": None,
            "code": code,
            "request_id": uuid.uuid4().hex,
        }
    }
