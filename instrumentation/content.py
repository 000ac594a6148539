"""Message content in the GenAI semconv "parts" shape, redacted and size-capped, as JSON strings.

Only called when content capture is on. Shapes follow the semconv input/output message JSON schemas:
`{"role", "parts": [{"type": "text", "content"} | {"type": "tool_call", ...} | ...], "finish_reason"?}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from . import semconv as sc
from .config import InstrumentationConfig

Part = dict[str, Any]
Message = dict[str, Any]
_TEXT_KEYS = ("content", "response", "arguments")


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """Field of a dict or an SDK model object."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def text_part(text: str) -> Part:
    return {"type": "text", "content": text}


def _block_part(block: Any) -> Part | None:
    """One content block of either API as a semconv part (None for empty text)."""
    if isinstance(block, str):
        return text_part(block) if block else None
    kind = _get(block, "type")
    if kind in ("text", "input_text", "output_text"):
        return text_part(str(_get(block, "text") or ""))
    if kind == "tool_use":
        return {
            "type": "tool_call",
            "id": _get(block, "id"),
            "name": _get(block, "name"),
            "arguments": _get(block, "input"),
        }
    if kind == "tool_result":
        return {
            "type": "tool_call_response",
            "id": _get(block, "tool_use_id"),
            "response": _content_text(_get(block, "content")),
        }
    return {"type": str(kind or "unknown")}  # images, audio, files: kind only, never the payload


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable):
        return " ".join(str(_get(b, "text") or "") for b in content if _get(b, "text"))
    return ""


def _parts(content: Any) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts = (_block_part(block) for block in content)
    return [p for p in parts if p is not None]


def chat_input_messages(messages: Any) -> list[Message]:
    """OpenAI chat `messages` (system messages stay in the history with role `system`)."""
    out: list[Message] = []
    for message in messages or ():
        role = str(_get(message, "role") or "user")
        if role == "tool":
            parts: list[Part] = [
                {
                    "type": "tool_call_response",
                    "id": _get(message, "tool_call_id"),
                    "response": _content_text(_get(message, "content")),
                }
            ]
        else:
            parts = _parts(_get(message, "content"))
            for call in _get(message, "tool_calls") or ():
                function = _get(call, "function")
                parts.append(
                    {
                        "type": "tool_call",
                        "id": _get(call, "id"),
                        "name": _get(function, "name"),
                        "arguments": _get(function, "arguments"),
                    }
                )
        out.append({"role": role, "parts": parts})
    return out


def responses_input_messages(raw_input: Any) -> list[Message]:
    """OpenAI Responses `input`: a string or a list of message / tool-output items."""
    if isinstance(raw_input, str):
        return [{"role": "user", "parts": [text_part(raw_input)]}]
    out: list[Message] = []
    for item in raw_input or ():
        if _get(item, "type") == "function_call_output":
            out.append(
                {
                    "role": "tool",
                    "parts": [
                        {
                            "type": "tool_call_response",
                            "id": _get(item, "call_id"),
                            "response": str(_get(item, "output") or ""),
                        }
                    ],
                }
            )
        elif _get(item, "role"):
            out.append({"role": str(_get(item, "role")), "parts": _parts(_get(item, "content"))})
    return out


def anthropic_input_messages(messages: Any) -> list[Message]:
    """Anthropic `messages` (content as a string or blocks; tool results become tool_call_response)."""
    return [
        {"role": str(_get(m, "role") or "user"), "parts": _parts(_get(m, "content"))} for m in messages or ()
    ]


def system_instructions(system: Any) -> list[Part]:
    """Anthropic `system` / OpenAI Responses `instructions` as parts."""
    return _parts(system)


def output_message(text: str, finish_reason: str | None, tool_calls: list[Part] | None = None) -> Message:
    """One assistant output message; its finish reason in the semconv enum (``end_turn`` → ``stop``)."""
    parts = [text_part(text)] if text else []
    parts.extend(tool_calls or ())
    reason = sc.PROVIDER_FINISH_REASONS.get(finish_reason, finish_reason) if finish_reason else sc.FINISH_STOP
    return {"role": "assistant", "parts": parts, "finish_reason": reason}


class ContentRenderer:
    """Redacts then caps the text in messages, and serialises them to a JSON string."""

    def __init__(self, config: InstrumentationConfig) -> None:
        self._redactor = config.redactor
        self._max_chars = config.max_content_chars

    def render(self, messages: list[Any]) -> tuple[str, bool]:
        """(JSON string, whether any text was truncated)."""
        budget = [self._max_chars]
        truncated = False
        for message in messages:
            for part in message.get("parts", ()) if "parts" in message else (message,):
                for key in _TEXT_KEYS:
                    value = part.get(key)
                    if isinstance(value, (dict, list)):
                        value = json.dumps(value, ensure_ascii=False, default=str)
                    if isinstance(value, str):
                        part[key], cut = self._cap(self._redact(value), budget)
                        truncated = truncated or cut
        return json.dumps(messages, ensure_ascii=False, default=str), truncated

    def _redact(self, text: str) -> str:
        return self._redactor(text) if self._redactor is not None else text

    @staticmethod
    def _cap(text: str, budget: list[int]) -> tuple[str, bool]:
        if len(text) <= budget[0]:
            budget[0] -= len(text)
            return text, False
        keep = max(budget[0], 0)
        budget[0] = 0
        return text[:keep] + sc.SPANLAKE_CONTENT_TRUNCATED_MARKER.format(dropped=len(text) - keep), True
