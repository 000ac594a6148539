"""Transparent stream proxies: chunks pass through unchanged and unbuffered, the span ends exactly once.

A proxy (wrapt.ObjectProxy, so `isinstance(stream, openai.Stream)` still holds) stamps time to first
chunk, feeds each chunk to an accumulator, and ends the call when the stream is exhausted, closed,
raises, or is garbage-collected. Context-manager use returns the proxy itself.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol

import wrapt

from ._safety import report_internal_error
from .content import Message
from .invocation import Invocation, Usage


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
            _StreamEnd.end(self, exc if isinstance(exc, Exception) else None)

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
            _StreamEnd.end(self, exc if isinstance(exc, Exception) else None)

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            _StreamEnd.end(self, None)

    def __del__(self) -> None:
        _StreamEnd.end(self, None)
