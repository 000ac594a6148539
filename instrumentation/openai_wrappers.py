"""openai: chat completions and Responses API (+ their `.stream()` and `.parse()` helpers) and embeddings,
sync and async.

Imported only when `openai` is installed. Request attributes record only what the app sent. `parse` posts
by itself (it does not call `create`), so it is wrapped like `create`; a version whose `parse` did call
`create` would still give one span (see wrappers). `.stream()` sends through `create`; its manager is
proxied only so that leaving the `with` block ends the span.
"""

from __future__ import annotations

from typing import Any, Final

from opentelemetry.instrumentation.utils import unwrap

from . import content
from . import semconv as sc
from .content import Message, Part
from .invocation import Usage
from .telemetry import Telemetry
from .wrappers import (
    CallSpec,
    ResponseInfo,
    async_wrapper,
    given,
    server_attributes_from_client,
    stream_helper_wrapper,
    sync_wrapper,
    wrap_if_present,
)

_CHAT_PARAMS: Final = (
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", sc.GEN_AI_REQUEST_TOP_P),
    ("seed", sc.GEN_AI_REQUEST_SEED),
    ("frequency_penalty", sc.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", sc.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("n", sc.GEN_AI_REQUEST_CHOICE_COUNT),
)
_INCOMPLETE_REASONS: Final = {"max_output_tokens": "length", "content_filter": "content_filter"}


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)
        if obj is None:
            return None
    return obj


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- chat completions ---------------------------------------------------------------------------
def chat_request_attributes(kwargs: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {key: kwargs[arg] for arg, key in _CHAT_PARAMS if given(kwargs.get(arg))}
    max_tokens = kwargs.get("max_completion_tokens")
    max_tokens = max_tokens if given(max_tokens) else kwargs.get("max_tokens")
    if given(max_tokens):
        attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    stop = kwargs.get("stop")
    if given(stop):
        attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop] if isinstance(stop, str) else list(stop)
    if given(kwargs.get("stream")):
        attrs[sc.GEN_AI_REQUEST_STREAM] = bool(kwargs["stream"])
    response_format = kwargs.get("response_format")
    if given(response_format):
        kind = _get(response_format, "type") if isinstance(response_format, dict) else "json_schema"
        attrs[sc.GEN_AI_OUTPUT_TYPE] = (
            sc.GEN_AI_OUTPUT_TYPE_TEXT if kind == "text" else sc.GEN_AI_OUTPUT_TYPE_JSON
        )
    return attrs


def _chat_usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    return Usage(
        input_tokens=_int(_get(usage, "prompt_tokens")),
        output_tokens=_int(_get(usage, "completion_tokens")),
        cache_read=_int(_get(usage, "prompt_tokens_details", "cached_tokens")),
        reasoning=_int(_get(usage, "completion_tokens_details", "reasoning_tokens")),
    )


def _common_response_attrs(response_id: Any, model: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if isinstance(response_id, str):
        attrs[sc.GEN_AI_RESPONSE_ID] = response_id
    if isinstance(model, str):
        attrs[sc.GEN_AI_RESPONSE_MODEL] = model
    return attrs


def _chat_extras(attrs: dict[str, Any], fingerprint: Any, tier: Any) -> None:
    if isinstance(fingerprint, str):
        attrs[sc.GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint
    if isinstance(tier, str):
        attrs[sc.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER] = tier


def chat_response_info(result: Any, capture: bool) -> ResponseInfo:
    attrs = _common_response_attrs(_get(result, "id"), _get(result, "model"))
    choices = _get(result, "choices") or []
    reasons = [str(c.finish_reason) for c in choices if getattr(c, "finish_reason", None)]
    if reasons:
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    _chat_extras(attrs, _get(result, "system_fingerprint"), _get(result, "service_tier"))
    outputs = None
    if capture:
        outputs = [
            content.output_message(
                _get(c, "message", "content") or "",
                _get(c, "finish_reason"),
                _tool_calls(_get(c, "message", "tool_calls")),
            )
            for c in choices
        ]
    return attrs, _chat_usage(_get(result, "usage")), outputs


def _tool_calls(calls: Any) -> list[Part]:
    return [
        {
            "type": "tool_call",
            "id": _get(c, "id"),
            "name": _get(c, "function", "name"),
            "arguments": _get(c, "function", "arguments"),
        }
        for c in calls or ()
    ]


class ChatAccumulator:
    """Reads chat.completion.chunk objects: id, model, finish reasons, usage (include_usage), text."""

    __slots__ = ("capture", "fingerprint", "model", "reasons", "response_id", "texts", "tier", "usage")

    def __init__(self, capture: bool) -> None:
        self.capture = capture
        self.response_id = self.model = self.fingerprint = self.tier = self.usage = None
        self.reasons: dict[int, str] = {}
        self.texts: dict[int, list[str]] = {}

    def process(self, chunk: Any) -> None:
        if self.response_id is None:
            self.response_id, self.model = chunk.id, chunk.model
            self.fingerprint, self.tier = (
                getattr(chunk, "system_fingerprint", None),
                getattr(chunk, "service_tier", None),
            )
        for choice in chunk.choices or ():
            if choice.finish_reason:
                self.reasons[choice.index] = choice.finish_reason
            if self.capture and choice.delta is not None and choice.delta.content:
                self.texts.setdefault(choice.index, []).append(choice.delta.content)
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage

    def result(self) -> ResponseInfo:
        attrs = _common_response_attrs(self.response_id, self.model)
        if self.reasons:
            attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [self.reasons[i] for i in sorted(self.reasons)]
        _chat_extras(attrs, self.fingerprint, self.tier)
        outputs = None
        if self.capture:
            indexes = sorted(set(self.texts) | set(self.reasons))
            outputs = [
                content.output_message("".join(self.texts.get(i, [])), self.reasons.get(i)) for i in indexes
            ]
        return attrs, _chat_usage(self.usage), outputs


def chat_inputs(kwargs: dict[str, Any]) -> tuple[list[Message] | None, list[Part] | None]:
    return content.chat_input_messages(kwargs.get("messages")), None


# --- Responses API ------------------------------------------------------------------------------
def responses_request_attributes(kwargs: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for arg, key in (
        ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE),
        ("top_p", sc.GEN_AI_REQUEST_TOP_P),
        ("max_output_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS),
    ):
        if given(kwargs.get(arg)):
            attrs[key] = kwargs[arg]
    if given(kwargs.get("stream")):
        attrs[sc.GEN_AI_REQUEST_STREAM] = bool(kwargs["stream"])
    fmt = _get(kwargs.get("text"), "format", "type") if given(kwargs.get("text")) else None
    if given(kwargs.get("text_format")):  # `responses.parse(text_format=Model)`: a JSON schema request
        fmt = "json_schema"
    if isinstance(fmt, str):
        attrs[sc.GEN_AI_OUTPUT_TYPE] = (
            sc.GEN_AI_OUTPUT_TYPE_TEXT if fmt == "text" else sc.GEN_AI_OUTPUT_TYPE_JSON
        )
    return attrs


def _responses_usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    return Usage(
        input_tokens=_int(_get(usage, "input_tokens")),
        output_tokens=_int(_get(usage, "output_tokens")),
        cache_read=_int(_get(usage, "input_tokens_details", "cached_tokens")),
        reasoning=_int(_get(usage, "output_tokens_details", "reasoning_tokens")),
    )


def _responses_finish_reason(response: Any) -> str | None:
    status = _get(response, "status")
    if status == "completed":
        items = _get(response, "output") or ()
        return "tool_calls" if any(_get(i, "type") == "function_call" for i in items) else "stop"
    if status == "incomplete":
        reason = _get(response, "incomplete_details", "reason")
        return _INCOMPLETE_REASONS.get(str(reason), str(reason or "incomplete"))
    return "error" if status == "failed" else None


def responses_response_info(result: Any, capture: bool) -> ResponseInfo:
    attrs = _common_response_attrs(_get(result, "id"), _get(result, "model"))
    reason = _responses_finish_reason(result)
    if reason:
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [reason]
    tier = _get(result, "service_tier")
    if isinstance(tier, str):
        attrs[sc.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER] = tier
    outputs = None
    if capture:
        text = getattr(result, "output_text", None)
        outputs = [content.output_message(text if isinstance(text, str) else "", reason)]
    return attrs, _responses_usage(_get(result, "usage")), outputs


class ResponsesAccumulator:
    """Reads Responses API stream events; the terminal event carries the whole response."""

    __slots__ = ("capture", "final", "started", "texts")

    def __init__(self, capture: bool) -> None:
        self.capture = capture
        self.final: Any = None
        self.started: Any = None
        self.texts: list[str] = []

    def process(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self.final = event.response
        elif kind == "response.created":
            self.started = event.response
        elif self.capture and kind == "response.output_text.delta":
            self.texts.append(event.delta)

    def result(self) -> ResponseInfo:
        if self.final is not None:
            return responses_response_info(self.final, self.capture)
        attrs = _common_response_attrs(_get(self.started, "id"), _get(self.started, "model"))
        outputs = [content.output_message("".join(self.texts), None)] if self.capture else None
        return attrs, None, outputs


def responses_inputs(kwargs: dict[str, Any]) -> tuple[list[Message] | None, list[Part] | None]:
    instructions = kwargs.get("instructions")
    system = content.system_instructions(instructions) if given(instructions) else None
    return content.responses_input_messages(kwargs.get("input")), system


# --- embeddings ---------------------------------------------------------------------------------
def embeddings_request_attributes(kwargs: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if given(kwargs.get("dimensions")):
        attrs[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = kwargs["dimensions"]
    if given(kwargs.get("encoding_format")):
        attrs[sc.GEN_AI_REQUEST_ENCODING_FORMATS] = [kwargs["encoding_format"]]
    return attrs


def embeddings_response_info(result: Any, capture: bool) -> ResponseInfo:
    attrs = _common_response_attrs(None, _get(result, "model"))
    data = _get(result, "data") or []
    if data and isinstance(_get(data[0], "embedding"), list):
        attrs[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = len(data[0].embedding)
    usage = _get(result, "usage")
    return attrs, Usage(input_tokens=_int(_get(usage, "prompt_tokens"))) if usage is not None else None, None


# --- wiring -------------------------------------------------------------------------------------
def _specs() -> dict[str, CallSpec]:
    import openai

    def is_stream(result: Any) -> bool:
        return isinstance(result, (openai.Stream, openai.AsyncStream))

    common = {"provider": sc.GEN_AI_PROVIDER_OPENAI, "server_attributes": server_attributes_from_client}
    return {
        "chat": CallSpec(
            operation=sc.GEN_AI_OPERATION_CHAT,
            request_attributes=chat_request_attributes,
            response_info=chat_response_info,
            is_stream=is_stream,
            accumulator=ChatAccumulator,
            inputs=chat_inputs,
            **common,
        ),
        "responses": CallSpec(
            operation=sc.GEN_AI_OPERATION_CHAT,
            request_attributes=responses_request_attributes,
            response_info=responses_response_info,
            is_stream=is_stream,
            accumulator=ResponsesAccumulator,
            inputs=responses_inputs,
            **common,
        ),
        "embeddings": CallSpec(
            operation=sc.GEN_AI_OPERATION_EMBEDDINGS,
            request_attributes=embeddings_request_attributes,
            response_info=embeddings_response_info,
            **common,
        ),
    }


_TARGETS: Final = (
    ("openai.resources.chat.completions", "Completions.create", "chat", False),
    ("openai.resources.chat.completions", "AsyncCompletions.create", "chat", True),
    ("openai.resources.chat.completions", "Completions.parse", "chat", False),
    ("openai.resources.chat.completions", "AsyncCompletions.parse", "chat", True),
    ("openai.resources.responses", "Responses.create", "responses", False),
    ("openai.resources.responses", "AsyncResponses.create", "responses", True),
    ("openai.resources.responses", "Responses.parse", "responses", False),
    ("openai.resources.responses", "AsyncResponses.parse", "responses", True),
    ("openai.resources.embeddings", "Embeddings.create", "embeddings", False),
    ("openai.resources.embeddings", "AsyncEmbeddings.create", "embeddings", True),
)
"""(module, Class.method, CallSpec, async): the calls that each get a span."""

_STREAM_HELPERS: Final = (
    ("openai.resources.chat.completions", "Completions.stream", False),
    ("openai.resources.chat.completions", "AsyncCompletions.stream", True),
    ("openai.resources.responses", "Responses.stream", False),
    ("openai.resources.responses", "AsyncResponses.stream", True),
)
"""(module, Class.method, async): `.stream()` helpers whose manager must end the span on exit."""


def instrument_openai(telemetry: Telemetry) -> list[tuple[Any, str]]:
    """Wrap every target that exists in the installed openai; return (owner, name) pairs for unwrap."""
    specs = _specs()
    wrapped: list[tuple[Any, str]] = []
    for module_name, attribute, kind, is_async in _TARGETS:
        factory = async_wrapper if is_async else sync_wrapper
        wrap_if_present(module_name, attribute, factory(telemetry, specs[kind]), wrapped)
    for module_name, attribute, is_async in _STREAM_HELPERS:
        wrap_if_present(module_name, attribute, stream_helper_wrapper(is_async), wrapped)
    return wrapped


def uninstrument_openai(wrapped: list[tuple[Any, str]]) -> None:
    """Restore the original methods."""
    for owner, method in wrapped:
        unwrap(owner, method)
