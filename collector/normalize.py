"""GenAI attributes → the typed GenAI columns of a span row. Table-driven and pure.

Each column lists its source keys in priority order (first present wins) and a converter. This
covers the OTel GenAI semantic conventions (current, and the older ``gen_ai.system`` /
``prompt_tokens`` names); other emitters' conventions are added as further rules here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spanlake.instrumentation import semconv as sc

GENAI_COLUMNS: tuple[str, ...] = (
    "operation", "provider", "request_model", "response_model", "response_id", "input_tokens",
    "output_tokens", "total_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens",
    "ttft_s", "is_stream", "finish_reasons", "user_id", "session_id", "feature", "prompt_name",
    "prompt_version", "error_type", "cost_usd", "output_chars",
)


def _str(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value)
    return text or None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _str_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.startswith("[") else [value]
        except json.JSONDecodeError:
            value = [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return None


_CLASS_REPR = re.compile(r"^<class '([\w.]+)'>$")


def error_class(value: Any) -> str | None:
    """A normalised error class name: ``<class 'openai.RateLimitError'>`` → ``RateLimitError``."""
    text = _str(value)
    if text is None:
        return None
    match = _CLASS_REPR.match(text)
    if match:
        text = match.group(1)
    return text.rsplit(".", 1)[-1] if "." in text and " " not in text else text


@dataclass(frozen=True)
class Rule:
    """One typed column: where its value may come from (first present wins) and how to convert it."""

    column: str
    sources: tuple[str, ...]
    convert: Callable[[Any], Any]


RULES: tuple[Rule, ...] = (
    Rule("operation", (sc.GEN_AI_OPERATION_NAME,), _str),
    Rule("provider", (sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_SYSTEM), _str),
    Rule("request_model", (sc.GEN_AI_REQUEST_MODEL,), _str),
    Rule("response_model", (sc.GEN_AI_RESPONSE_MODEL,), _str),
    Rule("response_id", (sc.GEN_AI_RESPONSE_ID,), _str),
    Rule("input_tokens", (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_PROMPT_TOKENS), _int),
    Rule("output_tokens", (sc.GEN_AI_USAGE_OUTPUT_TOKENS, sc.GEN_AI_USAGE_COMPLETION_TOKENS), _int),
    Rule("cached_input_tokens", (sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,), _int),
    Rule("cache_write_tokens", (sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,), _int),
    Rule("reasoning_tokens", (sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,), _int),
    Rule("ttft_s", (sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,), _float),
    Rule("is_stream", (sc.GEN_AI_REQUEST_STREAM,), _bool),
    Rule("finish_reasons", (sc.GEN_AI_RESPONSE_FINISH_REASONS,), _str_list),
    Rule("user_id", (sc.USER_ID, sc.ENDUSER_ID), _str),
    Rule("session_id", (sc.SESSION_ID, sc.GEN_AI_CONVERSATION_ID), _str),
    Rule("feature", (sc.SPANLAKE_FEATURE, sc.APP_FEATURE, sc.FEATURE), _str),
    Rule("prompt_name", (sc.GEN_AI_PROMPT_NAME,), _str),
    Rule("prompt_version", (sc.GEN_AI_PROMPT_VERSION,), _str),
    Rule("error_type", (sc.ERROR_TYPE,), error_class),
)

# A span is a GenAI span when it carries any of these.
GENAI_MARKERS = frozenset({sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_SYSTEM,
                           sc.GEN_AI_REQUEST_MODEL})
# Tags worth a typed column even on non-GenAI spans (an app span that carries the feature or user).
TAG_COLUMNS = ("user_id", "session_id", "feature")


def _first(attrs: dict[str, Any], rule: Rule) -> Any:
    for key in rule.sources:
        if key in attrs:
            value = rule.convert(attrs[key])
            if value is not None:
                return value
    return None


def output_chars(attrs: dict[str, Any]) -> int | None:
    """Characters of text in gen_ai.output.messages (semconv parts shape), if the content was captured."""
    raw = attrs.get(sc.GEN_AI_OUTPUT_MESSAGES)
    if raw is None:
        return None
    try:
        messages = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return None
    total = 0
    for message in messages if isinstance(messages, list) else []:
        for part in message.get("parts", []) if isinstance(message, dict) else []:
            if isinstance(part, dict) and isinstance(part.get("content"), str):
                total += len(part["content"])
    return total


def normalize(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The typed GenAI columns for one span's attributes, or None for a span without GenAI or tags."""
    if GENAI_MARKERS.isdisjoint(attrs) and not any(k.startswith(sc.GEN_AI_PREFIX) for k in attrs):
        tags = {r.column: _first(attrs, r) for r in RULES if r.column in TAG_COLUMNS}
        return tags if any(v is not None for v in tags.values()) else None
    row = {rule.column: _first(attrs, rule) for rule in RULES}
    if row["input_tokens"] is not None and row["output_tokens"] is not None:
        row["total_tokens"] = row["input_tokens"] + row["output_tokens"]
    if row["ttft_s"] is not None and row["is_stream"] is None:
        row["is_stream"] = True
    row["output_chars"] = output_chars(attrs)
    return row
