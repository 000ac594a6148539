"""anthropic: messages.create (sync, async, stream=True) and the `.stream()` helper.

Native SDK tracing: anthropic >= 2.x starts its own CLIENT span (scope `com.anthropic.sdk.python`) for
each API call whenever its client gets a tracer, i.e. whenever a global tracer provider exists (unless
`ANTHROPIC_OPEN_TELEMETRY=false` or the client's `open_telemetry=False`). While a spanlake-traced call
runs, spanlake makes the client's `_tracer` property answer None, so the SDK takes its untraced path and
exactly one span (ours, with tags, metrics and semconv naming) describes the call. Calls spanlake does
not wrap (count_tokens, batches, ...) keep their native spans. When the SDK has no `_tracer` hook to
borrow (an unknown version), spanlake steps aside for clients that trace natively instead of doubling.
"""

from __future__ import annotations

import contextvars
import importlib
import logging
from collections.abc import Awaitable, Callable
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
    call_async,
    call_sync,
    given,
    server_attributes_from_client,
    wrap_if_present,
)

logger = logging.getLogger(__name__)

_OWNED: contextvars.ContextVar[bool] = contextvars.ContextVar("spanlake_anthropic_owned", default=False)
_PARAMS: Final = (
    ("max_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS),
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", sc.GEN_AI_REQUEST_TOP_P),
    ("top_k", sc.GEN_AI_REQUEST_TOP_K),
)


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def request_attributes(kwargs: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {key: kwargs[arg] for arg, key in _PARAMS if given(kwargs.get(arg))}
    if given(kwargs.get("stop_sequences")):
        attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = list(kwargs["stop_sequences"])
    if given(kwargs.get("stream")):
        attrs[sc.GEN_AI_REQUEST_STREAM] = bool(kwargs["stream"])
    config = kwargs.get("output_config")
    if given(kwargs.get("output_format")) or (  # messages.parse(output_format=Model), or the raw JSON schema
            isinstance(config, dict) and isinstance(config.get("format"), dict)
            and config["format"].get("type") == "json_schema"):
        attrs[sc.GEN_AI_OUTPUT_TYPE] = sc.GEN_AI_OUTPUT_TYPE_JSON
    return attrs


def usage_of(usage: Any) -> Usage | None:
    """Semconv usage: input tokens INCLUDE cache reads and writes (Anthropic reports them apart)."""
    if usage is None:
        return None
    read, creation = (
        _int(_get(usage, "cache_read_input_tokens")),
        _int(_get(usage, "cache_creation_input_tokens")),
    )
    return Usage(
        input_tokens=_int(_get(usage, "input_tokens")) + read + creation,
        output_tokens=_int(_get(usage, "output_tokens")),
        cache_read=read,
        cache_creation=creation,
    )


_USAGE_FIELDS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens")


def _final_usage(start: Any, delta: Any) -> Any:
    """A stream's usage: message_delta's counts are cumulative and final (input and cache counts too,
    where the API sends them); message_start's stand in for the fields message_delta leaves out."""
    if start is None or delta is None:
        return start if delta is None else delta
    return {f: _get(delta, f) if _get(delta, f) is not None else _get(start, f) for f in _USAGE_FIELDS}


def _response_attrs(response_id: Any, model: Any, stop_reason: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if isinstance(response_id, str):
        attrs[sc.GEN_AI_RESPONSE_ID] = response_id
    if isinstance(model, str):
        attrs[sc.GEN_AI_RESPONSE_MODEL] = model
    if isinstance(stop_reason, str):
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [stop_reason]
    return attrs


def _output_parts(blocks: Any) -> tuple[str, list[Part]]:
    texts, calls = [], []
    for block in blocks or ():
        if _get(block, "type") == "text":
            texts.append(str(_get(block, "text") or ""))
        elif _get(block, "type") == "tool_use":
            calls.append(
                {
                    "type": "tool_call",
                    "id": _get(block, "id"),
                    "name": _get(block, "name"),
                    "arguments": _get(block, "input"),
                }
            )
    return "".join(texts), calls


def response_info(result: Any, capture: bool) -> ResponseInfo:
    stop_reason = _get(result, "stop_reason")
    attrs = _response_attrs(_get(result, "id"), _get(result, "model"), stop_reason)
    outputs = None
    if capture:
        text, calls = _output_parts(_get(result, "content"))
        outputs = [content.output_message(text, stop_reason, calls)]
    return attrs, usage_of(_get(result, "usage")), outputs


class MessagesAccumulator:
    """Reads raw Messages stream events: message_start, content_block_delta, message_delta."""

    __slots__ = ("capture", "final_usage", "message", "stop_reason", "texts")

    def __init__(self, capture: bool) -> None:
        self.capture = capture
        self.message: Any = None
        self.stop_reason: Any = None
        self.final_usage: Any = None
        self.texts: list[str] = []

    def process(self, event: Any) -> None:
        kind = event.type
        if kind == "message_start":
            self.message = event.message
        elif kind == "message_delta":
            self.stop_reason = event.delta.stop_reason
            self.final_usage = event.usage
        elif self.capture and kind == "content_block_delta" and getattr(event.delta, "text", None):
            self.texts.append(event.delta.text)

    def result(self) -> ResponseInfo:
        message = self.message
        attrs = _response_attrs(_get(message, "id"), _get(message, "model"), self.stop_reason)
        usage = usage_of(_final_usage(_get(message, "usage"), self.final_usage))
        outputs = [content.output_message("".join(self.texts), self.stop_reason)] if self.capture else None
        return attrs, usage, outputs


def inputs(kwargs: dict[str, Any]) -> tuple[list[Message] | None, list[Part] | None]:
    system = kwargs.get("system")
    return (
        content.anthropic_input_messages(kwargs.get("messages")),
        content.system_instructions(system) if given(system) else None,
    )


def _spec() -> CallSpec:
    import anthropic

    def is_stream(result: Any) -> bool:
        return isinstance(result, (anthropic.Stream, anthropic.AsyncStream))

    return CallSpec(
        operation=sc.GEN_AI_OPERATION_CHAT,
        provider=sc.GEN_AI_PROVIDER_ANTHROPIC,
        request_attributes=request_attributes,
        server_attributes=server_attributes_from_client,
        response_info=response_info,
        is_stream=is_stream,
        accumulator=MessagesAccumulator,
        inputs=inputs,
    )


# --- native-tracing handover -------------------------------------------------------------------
class NativeTracingHook:
    """Borrows the SDK client's `_tracer` property so it answers None inside spanlake-traced calls."""

    def __init__(self) -> None:
        self._owner: Any = None
        self._original: Any = None

    def install(self) -> bool:
        """Install the hook; False when this anthropic version has no `_tracer` property to borrow."""
        try:
            base_client = importlib.import_module("anthropic._base_client").BaseClient
        except (ImportError, AttributeError):
            return False
        original = base_client.__dict__.get("_tracer")
        if not isinstance(original, property) or original.fget is None:
            return False
        getter = original.fget

        def _tracer(client: Any) -> Any:
            return None if _OWNED.get() else getter(client)

        base_client._tracer = property(_tracer)
        self._owner, self._original = base_client, original
        return True

    def uninstall(self) -> None:
        if self._owner is not None:
            self._owner._tracer = self._original
            self._owner = self._original = None

    @property
    def installed(self) -> bool:
        return self._owner is not None


def _traces_natively(instance: Any) -> bool:
    """Whether this client would emit its own span (used only when the hook could not be installed)."""
    try:
        return instance._client._tracer is not None
    except Exception:  # noqa: BLE001 - boundary: unknown SDK internals
        return False


def _owned_sync(call: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        token = _OWNED.set(True)
        try:
            return call()
        finally:
            _OWNED.reset(token)

    return run


def _owned_async(call: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        token = _OWNED.set(True)
        try:
            return await call()
        finally:
            _OWNED.reset(token)

    return run


class AnthropicInstrumentation:
    """Wraps Messages.create / .parse / .stream (sync and async) and manages the native-tracing hook."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry
        self._spec = _spec()
        self._hook = NativeTracingHook()
        self._wrapped: list[tuple[Any, str]] = []

    def _defer(self, instance: Any) -> bool:
        return not self._hook.installed and _traces_natively(instance)

    def _create(
        self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if self._defer(instance):
            return wrapped(*args, **kwargs)
        call = _owned_sync(lambda: wrapped(*args, **kwargs))
        return call_sync(self._telemetry, self._spec, call, instance, kwargs)

    def _acreate(
        self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if self._defer(instance):
            return wrapped(*args, **kwargs)
        call = _owned_async(lambda: wrapped(*args, **kwargs))
        return call_async(self._telemetry, self._spec, call, instance, kwargs)

    def _stream(
        self, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """The helper sends its request on `__enter__`; trace that request, not the helper call."""
        manager = wrapped(*args, **kwargs)
        if self._defer(instance):
            return manager
        attribute = next(
            (
                a
                for a in ("_MessageStreamManager__api_request", "_AsyncMessageStreamManager__api_request")
                if hasattr(manager, a)
            ),
            None,
        )
        if attribute is None:
            return manager
        request = getattr(manager, attribute)
        traced_kwargs = {**kwargs, "stream": True}
        if attribute.startswith("_Async"):
            setattr(
                manager,
                attribute,
                call_async(
                    self._telemetry, self._spec, _owned_async(lambda: request), instance, traced_kwargs
                ),
            )
        else:
            setattr(
                manager,
                attribute,
                lambda: call_sync(self._telemetry, self._spec, _owned_sync(request), instance, traced_kwargs),
            )
        return manager

    def instrument(self) -> None:
        if not self._hook.install():
            logger.info("anthropic: no native-tracing hook; clients that trace natively keep their own spans")
        for attribute, wrapper in (
            ("Messages.create", self._create),
            ("AsyncMessages.create", self._acreate),
            # parse posts by itself (not through create), so it is traced like create
            ("Messages.parse", self._create),
            ("AsyncMessages.parse", self._acreate),
            ("Messages.stream", self._stream),
            ("AsyncMessages.stream", self._stream),
        ):
            wrap_if_present("anthropic.resources.messages", attribute, wrapper, self._wrapped)

    def uninstrument(self) -> None:
        for owner, method in self._wrapped:
            unwrap(owner, method)
        self._wrapped.clear()
        self._hook.uninstall()
