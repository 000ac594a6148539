"""Turn a request body into the reply the fake server will give: text, usage and finish reason.

Shared by the OpenAI and Anthropic route modules, which only shape this into each wire format.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from . import _catalog
from ._catalog import DEFAULT_FINGERPRINT, ModelInfo, Swap


@dataclass(frozen=True)
class Reply:
    """Everything a route needs to answer one generation request."""

    info: ModelInfo
    pieces: list[str]
    input_tokens: int
    cache_read: int
    cache_creation: int
    reasoning: int
    finish_reason: str  # "stop" or "length"
    response_id: str
    created: int
    fingerprint: str = DEFAULT_FINGERPRINT

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def output_tokens(self) -> int:
        """Visible output tokens (reasoning tokens excluded)."""
        return len(self.pieces)


def text_of(content: Any) -> str:
    """The plain text in a message content: a string, or a list of text parts in either API's shape."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [str(p.get("text", "")) for p in content if isinstance(p, dict)]
        return " ".join(t for t in texts if t)
    return ""


def prompt_of(messages: Any, *extra: Any) -> str:
    """All prompt text of a request, in order, for seeding and for token counting."""
    texts = [text_of(e) for e in extra if e]
    if isinstance(messages, str):
        texts.append(messages)
    elif isinstance(messages, list):
        texts.extend(text_of(m.get("content")) for m in messages if isinstance(m, dict))
    return "\n".join(t for t in texts if t)


def build_reply(
    *,
    model: str,
    provider: str,
    prompt: str,
    n_messages: int,
    max_tokens: int | None,
    forced_tokens: int | None,
    id_prefix: str,
    split_cache: bool = False,
    swap: Swap | None = None,
) -> Reply:
    """The deterministic reply for a request; `max_tokens` truncates with finish reason "length".

    With `swap`, a different model version answers (response model, fingerprint and length change).
    """
    info = _catalog.lookup(model, provider)
    fingerprint = DEFAULT_FINGERPRINT
    verbosity = 1.0
    if swap is not None:
        info = dataclasses.replace(info, version=swap.response_model)
        fingerprint, verbosity = _catalog.fingerprint_of(swap.response_model), swap.verbosity
    words = _catalog.reply_words(info, prompt, forced=forced_tokens, verbosity=verbosity)
    finish = "stop"
    if max_tokens is not None and 0 < max_tokens < len(words):
        words, finish = words[:max_tokens], "length"
    input_tokens = _catalog.count_tokens(prompt) + 3 * max(n_messages, 1)
    cached = _catalog.cached_tokens(input_tokens)
    creation = input_tokens // 5 if split_cache and cached else 0
    return Reply(
        info=info,
        pieces=_catalog.token_pieces(words),
        input_tokens=input_tokens,
        cache_read=cached,
        cache_creation=creation,
        reasoning=_catalog.reasoning_tokens(info, len(words)),
        finish_reason=finish,
        response_id=f"{id_prefix}{uuid.uuid4().hex[:24]}",
        created=int(time.time()),
        fingerprint=fingerprint,
    )


_JSON_OBJECT_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}}


def as_json(reply: Reply, schema: dict[str, Any] | None) -> Reply:
    """Structured outputs: the reply as a JSON instance of `schema`, its strings the reply's words."""
    root = schema if isinstance(schema, dict) else _JSON_OBJECT_SCHEMA
    text = json.dumps(_instance(root, reply.text, root))
    return dataclasses.replace(reply, pieces=_catalog.token_pieces(text.split(" ")))


def _instance(schema: Any, text: str, root: dict[str, Any]) -> Any:
    """A minimal value valid for a (pydantic-made) JSON schema: every string is `text`."""
    if not isinstance(schema, dict):
        return text
    if isinstance(schema.get("$ref"), str):
        return _instance(_resolve(schema["$ref"], root), text, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return _instance(schema[key][0], text, root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        return {name: _instance(sub, text, root) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [_instance(schema.get("items"), text, root)]
    scalars: dict[Any, Any] = {"integer": len(text.split()), "number": float(len(text.split()))}
    scalars.update({"boolean": True, "null": None})
    return scalars.get(kind, text)


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    """The schema a local `#/...` reference points to (an empty schema if it does not resolve)."""
    target: Any = root
    for key in ref.removeprefix("#/").split("/"):
        target = target.get(key) if isinstance(target, dict) else None
    return target if isinstance(target, dict) else {}
