"""Transparent stream proxies: chunks pass through unchanged and unbuffered, the span ends exactly once.

A proxy (wrapt.ObjectProxy, so `isinstance(stream, openai.Stream)` still holds) stamps time to first
chunk, feeds each chunk to an accumulator, and ends the call when the stream is exhausted, closed,
raises, or is garbage-collected. Context-manager use returns the proxy itself.

SDK `.stream()` helpers return a manager whose exit closes the HTTP response, not our proxy; a manager
proxy collects the stream proxies its enter opened (through a contextvar) and ends them on exit.
"""

from __future__ import annotations

import contextvars
from types import TracebackType
from typing import Any, Protocol, TypeVar

import wrapt

from ._safety import report_internal_error
from .content import Message
from .invocation import Invocation, Usage

_P = TypeVar("_P")
_OPENED: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "spanlake_opened_streams", default=None
)


class Accumulator(Protocol):
    """Collects what a stream's chunks say about the response (per provider/API)."""

    def process(self, chunk: Any) -> None: ...

    def result(self) -> tuple[dict[str, Any], Usage | None, list[Message] | None]: ...


class _StreamEnd:
    """Shared end-of-stream bookkeeping for the sync and async proxies."""

    @staticmethod
    def on_chunk(proxy: Any, chunk: Any) -> None:
        """Per-chunk hot path: one bound-method call when nothing is new."""
        try:
            if not proxy._self_seen_chunk:
                proxy._self_seen_chunk = True
                proxy._self_invocation.first_chunk()
            proxy._self_process(chunk)
        except Exception:  # noqa: BLE001 - boundary
            report_internal_error("stream chunk")

    @staticmethod
    def end(proxy: Any, error: BaseException | None) -> None:
        """End the call once: an error ends it failed, anything else (exhausted, closed, left) succeeds."""
        if proxy._self_ended:
            return
        proxy._self_ended = True
        try:
            attrs, usage, outputs = proxy._self_accumulator.result()
            if error is None:
                proxy._self_invocation.finish(attrs, usage, outputs)
            else:
                proxy._self_invocation.fail(error, attrs, usage, outputs)
        except Exception:  # noqa: BLE001 - boundary
            report_internal_error("stream end")


class SyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """Proxy for a sync provider stream (openai.Stream, anthropic.Stream)."""

    def __init__(self, wrapped: Any, invocation: Invocation, accumulator: Accumulator) -> None:
        super().__init__(wrapped)
        self._self_invocation = invocation
        self._self_accumulator = accumulator
        self._self_process = accumulator.process
        self._self_seen_chunk = False
        self._self_ended = False

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            chunk = self.__wrapped__.__next__()
        except StopIteration:
            _StreamEnd.end(self, None)
            raise
        except BaseException as error:
            _StreamEnd.end(self, error)
            raise
        _StreamEnd.on_chunk(self, chunk)
        return chunk

    def __enter__(self) -> SyncStreamProxy:  # noqa: PYI034 - returns the proxy, not Self of the wrapped
        self.__wrapped__.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            _StreamEnd.end(self, _exit_error(exc))

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            _StreamEnd.end(self, None)

    def __del__(self) -> None:
        _StreamEnd.end(self, None)


class AsyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """Proxy for an async provider stream (openai.AsyncStream, anthropic.AsyncStream)."""

    def __init__(self, wrapped: Any, invocation: Invocation, accumulator: Accumulator) -> None:
        super().__init__(wrapped)
        self._self_invocation = invocation
        self._self_accumulator = accumulator
        self._self_process = accumulator.process
        self._self_seen_chunk = False
        self._self_ended = False

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            _StreamEnd.end(self, None)
            raise
        except BaseException as error:
            _StreamEnd.end(self, error)
            raise
        _StreamEnd.on_chunk(self, chunk)
        return chunk

    async def __aenter__(self) -> AsyncStreamProxy:  # noqa: PYI034
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            _StreamEnd.end(self, _exit_error(exc))

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            _StreamEnd.end(self, None)

    def __del__(self) -> None:
        _StreamEnd.end(self, None)


def _exit_error(exc: BaseException | None) -> Exception | None:
    """The error a `with` block's exit records: app exceptions yes, KeyboardInterrupt/GeneratorExit no."""
    return exc if isinstance(exc, Exception) else None


def opened(proxy: _P) -> _P:
    """Hand a new stream proxy to the `.stream()` manager being entered, if any, so its exit ends it."""
    collector = _OPENED.get()
    if collector is not None:
        collector.append(proxy)
    return proxy


def _end_opened(streams: list[Any], exc: BaseException | None) -> None:
    """End the stream proxies a manager opened (idempotent: an exhausted stream has already ended)."""
    error = _exit_error(exc)
    while streams:
        _StreamEnd.end(streams.pop(), error)


class StreamManagerProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """Proxy for a sync `.stream()` helper's manager: leaving the `with` block ends the call's span."""

    def __init__(self, wrapped: Any) -> None:
        super().__init__(wrapped)
        self._self_opened: list[Any] = []

    def __enter__(self) -> Any:
        token = _OPENED.set(self._self_opened)
        try:
            return self.__wrapped__.__enter__()
        finally:
            _OPENED.reset(token)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            _end_opened(self._self_opened, exc)


class AsyncStreamManagerProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """Proxy for an async `.stream()` helper's manager: leaving the `async with` block ends the span."""

    def __init__(self, wrapped: Any) -> None:
        super().__init__(wrapped)
        self._self_opened: list[Any] = []

    async def __aenter__(self) -> Any:
        token = _OPENED.set(self._self_opened)
        try:
            return await self.__wrapped__.__aenter__()
        finally:
            _OPENED.reset(token)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            _end_opened(self._self_opened, exc)
