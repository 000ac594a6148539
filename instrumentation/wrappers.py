"""Generic wrapper factories: one traced call = start invocation, call through, end or hand to a stream proxy.

Provider modules describe an API with a `CallSpec`; these factories turn it into wrapt wrappers
(`traced(wrapped, instance, args, kwargs)`, contrib style). Telemetry failures are logged once and
swallowed; the app's own exceptions are re-raised unchanged. A traced call made while another traced call
runs in the same context (an SDK helper such as `parse` implemented over `create`) is the same request:
only the outer one gets a span.
"""

from __future__ import annotations

import contextvars
import importlib
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from wrapt import wrap_function_wrapper

from . import semconv as sc
from ._safety import report_internal_error
from .content import Message, Part
from .invocation import Invocation, Usage
from .streams import (
    Accumulator,
    AsyncStreamManagerProxy,
    AsyncStreamProxy,
    StreamManagerProxy,
    SyncStreamProxy,
    opened,
)
from .telemetry import Telemetry

ResponseInfo = tuple[dict[str, Any], Usage | None, list[Message] | None]
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

_IN_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar("spanlake_in_traced_call", default=False)
# The openai and anthropic SDKs' `with_raw_response` / `with_streaming_response` call the same method with
# this header: "true" (openai) or "raw" (anthropic) means the body is read and parse() is cached, so the
# span can read the parsed response; "stream" means the app reads the body itself, so it is left alone.
_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"
_RAW_BODY_READ = frozenset({"true", "raw"})


@dataclass(frozen=True)
class CallSpec:
    """How to read one API's requests, responses and streams."""

    operation: str
    provider: str
    request_attributes: Callable[[dict[str, Any]], dict[str, Any]]
    server_attributes: Callable[[Any], dict[str, Any]]
    response_info: Callable[[Any, bool], ResponseInfo]
    is_stream: Callable[[Any], bool] = lambda result: False
    accumulator: Callable[[bool], Accumulator] | None = None
    inputs: Callable[[dict[str, Any]], tuple[list[Message] | None, list[Part] | None]] | None = None


def start(telemetry: Telemetry, spec: CallSpec, instance: Any, kwargs: dict[str, Any]) -> Invocation | None:
    """Start the invocation for a call, or None if the instrumentation itself failed."""
    try:
        model = kwargs.get("model")
        invocation = Invocation(
            telemetry,
            operation=spec.operation,
            provider=spec.provider,
            model=model if isinstance(model, str) else None,
            request_attrs=spec.request_attributes(kwargs),
            server_attrs=spec.server_attributes(instance),
        )
        if invocation.capture and spec.inputs is not None:
            invocation.input_messages, invocation.system_instructions = spec.inputs(kwargs)
        return invocation
    except Exception:  # noqa: BLE001 - boundary
        report_internal_error(f"start {spec.operation}")
        return None


def _fail(invocation: Invocation, error: BaseException) -> None:
    try:
        invocation.fail(error)
    except Exception:  # noqa: BLE001 - boundary
        report_internal_error("fail")


def _complete(spec: CallSpec, invocation: Invocation, result: Any, proxy: type[Any]) -> Any:
    """Hand a stream to a proxy or end the span with the response; return what the app gets."""
    try:
        if spec.accumulator is not None and spec.is_stream(result):
            return opened(proxy(result, invocation, spec.accumulator(invocation.capture)))
        invocation.finish(*spec.response_info(result, invocation.capture))
    except Exception:  # noqa: BLE001 - boundary
        report_internal_error(f"complete {spec.operation}")
        _end_quietly(invocation)
    return result


def _raw_body_read(kwargs: dict[str, Any]) -> bool:
    """Whether the call came through `with_raw_response` for a complete (non-streamed) body."""
    headers = kwargs.get("extra_headers")
    return (isinstance(headers, dict) and headers.get(_RAW_RESPONSE_HEADER) in _RAW_BODY_READ
            and kwargs.get("stream") is not True)


def _parsed_raw(result: Any) -> Any:
    """The parsed response of a raw one (the SDK caches it, so the app's own parse() costs nothing more)."""
    try:
        return result.parse()
    except Exception:  # noqa: BLE001 - boundary: the span then ends without response attributes
        report_internal_error("parse raw response")
        return result


def _end_quietly(invocation: Invocation) -> None:
    """End a span whose response could not be read (idempotent; the call itself succeeded)."""
    try:
        invocation.finish({}, None)
    except Exception:  # noqa: BLE001 - boundary
        report_internal_error("end")


def call_sync(
    telemetry: Telemetry, spec: CallSpec, call: Callable[[], Any], instance: Any, kwargs: dict[str, Any]
) -> Any:
    """Run `call()` inside a traced invocation (untraced when an outer traced call already covers it)."""
    if _IN_CALL.get():
        return call()
    invocation = start(telemetry, spec, instance, kwargs)
    if invocation is None:
        return call()
    token, inside = invocation.activate(), _IN_CALL.set(True)
    try:
        result = call()
    except BaseException as error:
        _fail(invocation, error)
        raise
    finally:
        _IN_CALL.reset(inside)
        invocation.deactivate(token)
    if _raw_body_read(kwargs):
        _complete(spec, invocation, _parsed_raw(result), SyncStreamProxy)
        return result
    return _complete(spec, invocation, result, SyncStreamProxy)


async def call_async(
    telemetry: Telemetry,
    spec: CallSpec,
    call: Callable[[], Awaitable[Any]],
    instance: Any,
    kwargs: dict[str, Any],
) -> Any:
    """Await `call()` inside a traced invocation (untraced when an outer traced call already covers it)."""
    if _IN_CALL.get():
        return await call()
    invocation = start(telemetry, spec, instance, kwargs)
    if invocation is None:
        return await call()
    token, inside = invocation.activate(), _IN_CALL.set(True)
    try:
        result = await call()
    except BaseException as error:
        _fail(invocation, error)
        raise
    finally:
        _IN_CALL.reset(inside)
        invocation.deactivate(token)
    if _raw_body_read(kwargs):
        parsed = _parsed_raw(result)
        if inspect.isawaitable(parsed):  # anthropic's AsyncAPIResponse.parse() is a coroutine
            try:
                parsed = await parsed
            except Exception:  # noqa: BLE001 - boundary
                report_internal_error("parse raw response")
                parsed = result
        _complete(spec, invocation, parsed, AsyncStreamProxy)
        return result
    return _complete(spec, invocation, result, AsyncStreamProxy)


def sync_wrapper(telemetry: Telemetry, spec: CallSpec) -> Wrapper:
    """A wrapt wrapper tracing a sync method."""

    def traced(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        return call_sync(telemetry, spec, lambda: wrapped(*args, **kwargs), instance, kwargs)

    return traced


def async_wrapper(telemetry: Telemetry, spec: CallSpec) -> Wrapper:
    """A wrapt wrapper tracing an async method (returns the coroutine, as the original does)."""

    def traced(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        return call_async(telemetry, spec, lambda: wrapped(*args, **kwargs), instance, kwargs)

    return traced


def stream_helper_wrapper(is_async: bool) -> Wrapper:
    """A wrapt wrapper for a `.stream()` helper: its manager, proxied so leaving `with` ends the span."""
    manager_proxy = AsyncStreamManagerProxy if is_async else StreamManagerProxy

    def helper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        manager = wrapped(*args, **kwargs)
        try:
            return manager_proxy(manager)
        except Exception:  # noqa: BLE001 - boundary
            report_internal_error("stream helper")
            return manager

    return helper


def given(value: Any) -> bool:
    """Whether a request argument was actually sent (not None, not the SDK's Omit/NotGiven sentinel)."""
    return value is not None and type(value).__name__ not in ("Omit", "NotGiven")


def server_attributes_from_client(instance: Any) -> dict[str, Any]:
    """`server.address` / `server.port` from the resource's client base URL (openai and anthropic)."""
    url = instance._client.base_url
    port = url.port or (443 if url.scheme == "https" else 80)
    return {sc.SERVER_ADDRESS: url.host, sc.SERVER_PORT: port}


def wrap_if_present(module_name: str, attribute: str, wrapper: Wrapper, wrapped: list[tuple[Any, str]]) -> None:
    """Wrap `module.Class.method` if the installed SDK has it (older versions lack parse, stream, Responses);
    record (owner, method) in `wrapped` for unwrap."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return
    owner_name, method = attribute.split(".")
    owner = getattr(module, owner_name, None)
    if owner is None or not hasattr(owner, method):
        return
    wrap_function_wrapper(module, attribute, wrapper)
    wrapped.append((owner, method))
