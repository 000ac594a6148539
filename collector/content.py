"""GenAI content (prompts, completions, system instructions) → one canonical shape and the span_content table.

The canonical shape is the OTel GenAI parts shape: messages ``[{role, parts: [{type, content, ...}],
finish_reason?}]`` and system instructions ``[{type, content}]``. Content comes from span attributes
(each emitter its own way) or from log records joined by trace and span id; whichever arrives first
is stored, one row per span, in its own table so list and aggregate queries never read it.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from spanlake.collector.genai_map import finish_reason as canonical_finish
from spanlake.collector.storage import schema
from spanlake.instrumentation import semconv as sc

Messages = list[dict[str, Any]]
CONTENT_MAX_CHARS = 32_000  # per field (input, output, system); longer texts are cut with a marker
_SYSTEM_ROLES = ("system", "developer")


@dataclass
class Content:
    """One span's content in the canonical shape (None = not captured)."""

    input: Messages | None = None
    output: Messages | None = None
    system: list[dict[str, Any]] | None = None

    def empty(self) -> bool:
        return not (self.input or self.output or self.system)


def _parse(raw: Any) -> Any:
    """A JSON string → its value (non-JSON text stays a string); structured values pass through."""
    if isinstance(raw, str):
        text = raw.lstrip()
        if text[:1] in ("[", "{", '"'):
            try:  # content is the bulk of a span: parse it at C speed (integers beyond 64 bits become floats)
                return orjson.loads(raw)
            except orjson.JSONDecodeError:
                pass
            try:  # what orjson refuses but Python's json reads: NaN/Infinity literals
                return json.loads(raw)
            except (json.JSONDecodeError, RecursionError):
                return raw
    return raw


def _dumps(value: Any) -> str:
    """Compact JSON text; Python's json for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _text_part(text: Any) -> dict[str, Any]:
    return {"type": "text", "content": text if isinstance(text, str) else _dumps(text)}


def _parts(content: Any) -> list[dict[str, Any]]:
    """Message content in any common form (string, OpenAI/Anthropic part list, parts) → parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [_text_part(content)]
    if isinstance(content, dict):
        content = [content]
    parts = []
    for item in content if isinstance(content, list) else [content]:
        if isinstance(item, dict) and item.get("type") in (None, "text") and ("text" in item or "content" in item):
            parts.append(_text_part(item.get("content", item.get("text"))))
        elif isinstance(item, dict):
            parts.append({k: v for k, v in item.items() if v is not None})
        else:
            parts.append(_text_part(item))
    return parts


def _message(role: str | None, content: Any, finish_reason: Any = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": role or "assistant", "parts": _parts(content)}
    if finish_reason:
        msg["finish_reason"] = canonical_finish(finish_reason)
    return msg


def canonical_messages(value: Any, default_role: str) -> Messages:
    """Messages in the parts shape, the OpenAI-native shape or as plain text → canonical messages."""
    value = _parse(value)
    if not isinstance(value, list):
        value = [value] if isinstance(value, dict) and "role" in value else [{"role": default_role, "content": value}]
    out: Messages = []
    for item in value:
        if not isinstance(item, dict):
            out.append(_message(default_role, item))
        elif "parts" in item:
            msg = {"role": item.get("role") or default_role, "parts": _parts(item["parts"])}
            if item.get("finish_reason"):
                msg["finish_reason"] = canonical_finish(item["finish_reason"])
            out.append(msg)
        else:
            out.append(_message(item.get("role") or default_role, item.get("content"), item.get("finish_reason")))
    return out


def split_system(messages: Messages | None) -> tuple[Messages | None, list[dict[str, Any]] | None]:
    """(non-system messages, system instruction parts): system text lives apart in the canonical shape."""
    if not messages:
        return messages, None
    system = [p for m in messages if m.get("role") in _SYSTEM_ROLES for p in m.get("parts", [])]
    rest = [m for m in messages if m.get("role") not in _SYSTEM_ROLES]
    return rest, (system or None)


def output_chars(messages: Messages | None) -> int | None:
    """Characters of text in output messages (None when content was not captured)."""
    if messages is None:
        return None
    return sum(len(p["content"]) for m in messages for p in m.get("parts", [])
               if p.get("type") == "text" and isinstance(p.get("content"), str))


# --- per-emitter extraction from span attributes (each pops what it reads) ------------------------


def _from_parts_attrs(attrs: dict[str, Any]) -> Content:
    raw_in = attrs.pop(sc.GEN_AI_INPUT_MESSAGES, None)
    raw_out = attrs.pop(sc.GEN_AI_OUTPUT_MESSAGES, None)
    raw_sys = attrs.pop(sc.GEN_AI_SYSTEM_INSTRUCTIONS, None)
    inputs, system = split_system(canonical_messages(raw_in, "user") if raw_in is not None else None)
    if raw_sys is not None:  # an explicit system attribute wins over system-role messages (openlit has both)
        parsed = _parse(raw_sys)
        system = _parts(parsed if isinstance(parsed, list) else str(parsed))
    output = canonical_messages(raw_out, "assistant") if raw_out is not None else None
    return Content(inputs, output, system)


def _from_traceloop(attrs: dict[str, Any]) -> Content:
    content = _from_parts_attrs(attrs)
    entity_in = attrs.pop(sc.TRACELOOP_ENTITY_INPUT, None)
    entity_out = attrs.pop(sc.TRACELOOP_ENTITY_OUTPUT, None)
    if content.input is None and entity_in is not None:  # workflow/task I/O, as sent (may be any JSON)
        content.input = [_message("user", entity_in)]
    if content.output is None and entity_out is not None:
        content.output = [_message("assistant", _parse(entity_out))]
    return content


def _indexed(attrs: dict[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """Pop ``prefix{i}.rest`` keys into {i: {rest: value}} (OpenInference flattens lists this way)."""
    out: dict[int, dict[str, Any]] = {}
    for key in [k for k in attrs if k.startswith(prefix)]:
        index, _, rest = key[len(prefix):].partition(".")
        if index.isdigit():
            out.setdefault(int(index), {})[rest] = attrs.pop(key)
    return out


def _oi_messages(flat: dict[int, dict[str, Any]], default_role: str) -> Messages | None:
    if not flat:
        return None
    messages = []
    for i in sorted(flat):
        fields = flat[i]
        texts = [fields[k] for k in sorted(fields) if k.startswith("message.contents.") and k.endswith(".text")]
        content = fields.get("message.content", texts or None)
        messages.append(_message(fields.get("message.role") or default_role, content))
    return messages


def _from_openinference(attrs: dict[str, Any]) -> Content:
    inputs, system = split_system(_oi_messages(_indexed(attrs, sc.LLM_INPUT_MESSAGES_PREFIX), "user"))
    output = _oi_messages(_indexed(attrs, sc.LLM_OUTPUT_MESSAGES_PREFIX), "assistant")
    embeddings = _indexed(attrs, sc.EMBEDDING_PREFIX)  # texts are input; vectors are dropped (large, not content)
    texts = [e["embedding.text"] for _, e in sorted(embeddings.items()) if "embedding.text" in e]
    if inputs is None and texts:
        inputs = [_message("user", t) for t in texts]
    raw_in, raw_out = attrs.pop(sc.INPUT_VALUE, None), attrs.pop(sc.OUTPUT_VALUE, None)
    if inputs is None and system is None and raw_in is not None:  # CHAIN/TOOL spans: the I/O as text
        inputs = [_message("user", raw_in)]
    if output is None and raw_out is not None and not texts:
        output = [_message("assistant", raw_out)]
    return Content(inputs, output, system)


def _from_langfuse(attrs: dict[str, Any]) -> Content:
    raw_in, raw_out = attrs.pop(sc.LANGFUSE_INPUT, None), attrs.pop(sc.LANGFUSE_OUTPUT, None)
    inputs, system = split_system(canonical_messages(raw_in, "user") if raw_in is not None else None)
    output = canonical_messages(raw_out, "assistant") if raw_out is not None else None
    return Content(inputs, output, system)


SPAN_EXTRACTORS: Mapping[str, Callable[[dict[str, Any]], Content]] = {
    "parts": _from_parts_attrs, "traceloop": _from_traceloop, "openinference": _from_openinference,
    "langfuse": _from_langfuse,
}
# Keys that mean "this span may carry content" per extractor: a cheap test before any work.
SPAN_CONTENT_KEYS: Mapping[str, tuple[str, ...]] = {
    "parts": (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS),
    "traceloop": (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS,
                  sc.TRACELOOP_ENTITY_INPUT, sc.TRACELOOP_ENTITY_OUTPUT),
    "openinference": (sc.INPUT_VALUE, sc.OUTPUT_VALUE, sc.LLM_INPUT_MESSAGES_PREFIX + "0.message.role",
                      sc.LLM_OUTPUT_MESSAGES_PREFIX + "0.message.role",
                      sc.EMBEDDING_PREFIX + "0.embedding.text", sc.EMBEDDING_PREFIX + "0.embedding.vector"),
    "langfuse": (sc.LANGFUSE_INPUT, sc.LANGFUSE_OUTPUT),
}


def from_span(extractor: str, attrs: dict[str, Any]) -> Content | None:
    """The content an emitter put on a span, removed from ``attrs`` (None when there is none)."""
    keys = SPAN_CONTENT_KEYS.get(extractor)
    if not keys or not any(k in attrs for k in keys):
        return None
    content = SPAN_EXTRACTORS[extractor](attrs)
    return None if content.empty() else content


# --- log records (semconv <= 1.36 events, and the 1.37+ inference details event) -----------------

CONTENT_EVENTS = frozenset({sc.EVENT_SYSTEM_MESSAGE, sc.EVENT_USER_MESSAGE, sc.EVENT_ASSISTANT_MESSAGE,
                            sc.EVENT_TOOL_MESSAGE, sc.EVENT_CHOICE, sc.EVENT_INFERENCE_DETAILS})
_EVENT_ROLES = {sc.EVENT_SYSTEM_MESSAGE: "system", sc.EVENT_USER_MESSAGE: "user",
                sc.EVENT_ASSISTANT_MESSAGE: "assistant", sc.EVENT_TOOL_MESSAGE: "tool"}


def from_log(event_name: str, attrs: Mapping[str, Any], body: Any) -> Content | None:
    """The content one GenAI log record carries, in the canonical shape."""
    if event_name == sc.EVENT_INFERENCE_DETAILS:
        content = _from_parts_attrs(dict(attrs))
        return None if content.empty() else content
    body = body if isinstance(body, dict) else {"content": body}
    if event_name == sc.EVENT_CHOICE:
        message = body.get("message") if isinstance(body.get("message"), dict) else {}
        return Content(output=[_message(message.get("role"), message.get("content"), body.get("finish_reason"))])
    role = _EVENT_ROLES[event_name]
    if role == "system":
        return Content(system=_parts(body.get("content")))
    return Content(input=[_message(body.get("role") or role, body.get("content"))])


# --- size cap and the table ----------------------------------------------------------------------


def _cap(items: list[dict[str, Any]] | None, messages: bool) -> tuple[str | None, bool]:
    """JSON of messages/parts with text cut at CONTENT_MAX_CHARS in total (marked); (json, truncated)."""
    if items is None:
        return None, False
    budget, truncated = CONTENT_MAX_CHARS, False
    for part in (p for m in items for p in m.get("parts", [])) if messages else iter(items):
        text = part.get("content")
        if not isinstance(text, str):
            continue
        if len(text) > budget:
            part["content"] = text[:budget] + sc.SPANLAKE_CONTENT_TRUNCATED_MARKER.format(dropped=len(text) - budget)
            truncated = True
        budget = max(0, budget - len(text))
    return _dumps(items), truncated


@dataclass
class _Row:
    time_us: int
    service: str | None
    source: str
    content: Content = field(default_factory=Content)


class ContentCollector:
    """Pending content rows of one flush, first source per span wins across flushes (bounded memory)."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._capacity = capacity
        self.pending: dict[tuple[str, str], _Row] = {}
        self.has_log_content = False  # lets spans skip the lookup while no emitter sends content as logs
        self._written: OrderedDict[tuple[str, str], int | None] = OrderedDict()  # key → output chars

    def __len__(self) -> int:
        return len(self.pending)

    def add_span(self, key: tuple[str, str], time_us: int, service: str | None, content: Content) -> None:
        if key in self._written:
            return
        self.pending[key] = _Row(time_us, service, "span", content)  # complete: replaces log-derived rows

    def add_log(self, key: tuple[str, str], time_us: int, service: str | None, content: Content) -> None:
        if key in self._written:
            return
        self.has_log_content = True
        row = self.pending.get(key)
        if row is None:
            row = self.pending[key] = _Row(time_us, service, "logs")
        elif row.source == "span":
            return
        c = row.content
        c.input = (c.input or []) + content.input if content.input else c.input
        c.output = (c.output or []) + content.output if content.output else c.output
        c.system = (c.system or []) + content.system if content.system else c.system

    def output_chars_seen(self, key: tuple[str, str]) -> int | None:
        """Output length of content already seen in log records for this span (they may come first)."""
        row = self.pending.get(key)
        if row is not None:
            return output_chars(row.content.output)
        return self._written.get(key)

    def take(self) -> pa.Table:
        """The span_content rows of everything pending; remembers their keys so later sources are skipped."""
        keys, rows = list(self.pending), list(self.pending.values())
        self.pending = {}
        inputs = [_cap(r.content.input, True) for r in rows]
        outputs = [_cap(r.content.output, True) for r in rows]
        systems = [_cap(r.content.system, False) for r in rows]
        times = pa.array([r.time_us for r in rows], pa.int64())
        values: dict[str, Any] = {
            "trace_id": [k[0] for k in keys], "span_id": [k[1] for k in keys], "time": times.cast(schema.TS),
            "service_name": [r.service for r in rows], "input_messages": [x[0] for x in inputs],
            "output_messages": [x[0] for x in outputs], "system_instructions": [x[0] for x in systems],
            "source": [r.source for r in rows],
            "truncated": [a[1] or b[1] or c[1] for a, b, c in zip(inputs, outputs, systems)],
            schema.PARTITION_COLUMN: pc.divide(times, 86_400_000_000).cast(pa.int32()).cast(pa.date32()),
        }
        self._written.update(zip(keys, [output_chars(r.content.output) for r in rows]))
        for _ in range(len(self._written) - self._capacity):
            self._written.popitem(last=False)
        arrays = {c.name: values[c.name] if isinstance(values[c.name], pa.Array) else pa.array(values[c.name], c.type)
                  for c in schema.SPAN_CONTENT_COLUMNS}
        return pa.table(arrays, schema=schema.arrow_schema(schema.SPAN_CONTENT))
