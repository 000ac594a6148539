"""OTLP/HTTP receiver: POST {prefix}/v1/{traces,logs,metrics}, GET /healthz and /metrics.

Framing, limits, decompression and status mapping only; everything else is :class:`Ingest`'s job.
Paths may carry a prefix (Langfuse's exporter posts to /api/public/otel/v1/traces).

HTTP/1.1 is parsed by h11 on one asyncio event loop, so a slow or idle connection costs a socket, not a
thread; the work (inflating, parsing, the WAL append, GET routes) runs on a bounded thread pool. Every
request must arrive whole (headers and body) within ``request_timeout_s`` of the previous answer; the
size cap holds for every framing (declared length, chunked, inflated). An answer given before the body is
read closes the connection, so the unread body is never taken for a next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import h11
from google.protobuf import json_format
from google.rpc import status_pb2
from spanlake.collector.errors import (
    InvalidPayload,
    Overloaded,
    PayloadTooLarge,
    RequestError,
    Unauthenticated,
    UnsupportedMediaType,
)
from spanlake.collector.ingest import Ingest
from spanlake.collector.receivers.body import body_format, content_encoding, decompress

logger = logging.getLogger(__name__)

SIGNAL_SUFFIXES = {"/v1/traces": "traces", "/v1/logs": "logs", "/v1/metrics": "metrics"}
GetRoute = Callable[[], tuple[int, str, bytes]]
Reply = tuple[int, str, bytes, dict[str, str]]  # status, content type, body, extra headers
Work = Callable[[], Reply]
MAX_HEADER_BYTES = 64 * 1024  # request line + headers; h11 answers 431 above it
READ_CHUNK = 256 * 1024
LINGER_S = 5.0  # after an early answer, how long what the client still sends is read and dropped
LINGER_BYTES_FACTOR = 4  # ... and at most this many times the size cap
PUBLIC_PATHS = ("/healthz",)


def signal_for_path(path: str) -> str | None:
    path = path.split("?", 1)[0].rstrip("/")
    for suffix, signal in SIGNAL_SUFFIXES.items():
        if path.endswith(suffix):
            return signal
    return None


class _Answer(Exception):
    """An answer decided before or while the body is read; the connection closes after it."""

    def __init__(self, status: int, ctype: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.ctype, self.body, self.headers = status, ctype, body, headers or {}


class HttpReceiver:
    """Runs the OTLP/HTTP server on an event loop in a background thread, its work on ``workers`` threads."""

    def __init__(self, host: str, port: int, ingest: Ingest, max_bytes: int, auth_token: str | None,
                 get_routes: dict[str, GetRoute], request_timeout_s: float = 30.0, workers: int = 8,
                 max_connections: int = 512) -> None:
        self.ingest = ingest
        self.max_bytes = max_bytes
        self.auth_token = auth_token
        self.get_routes = get_routes
        self.request_timeout_s = request_timeout_s
        self.max_connections = max_connections
        family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        self._sock = socket.create_server((host, port), family=family, backlog=1024)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="otlp-http-worker")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="otlp-http", daemon=True)
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._stop_timeout = 10.0
        self.closing = False  # stop() was called: connections end after their current answer

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("OTLP/HTTP receiver did not start")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let requests being processed answer (up to ``timeout``), close the rest."""
        if self._thread.is_alive() and self._stopping is not None:
            self._stop_timeout = timeout
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout + 5)
        else:
            self._sock.close()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._on_connection, sock=self._sock, limit=READ_CHUNK)
        self._started.set()
        await self._stopping.wait()
        self.closing = True
        server.close()
        idle = [task for task, conn in self._connections.items() if not conn.busy]
        for task in idle:
            task.cancel()
        busy = [task for task in self._connections if task not in idle]
        if busy:
            await asyncio.wait(busy, timeout=self._stop_timeout)
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=2.0)

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self.max_connections:
            logger.warning("http: %d connections open, refusing another (http_max_connections)",
                           len(self._connections))
            writer.transport.abort()
            return
        conn = _Connection(self, reader, writer)
        self._connections[task] = conn
        try:
            await conn.serve()
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:  # one connection's bug never stops the server
            logger.exception("http: connection failed")
        finally:
            self._connections.pop(task, None)
            writer.close()

    # --- work on the pool: everything that may take CPU or block ---

    def process(self, signal: str, fmt: str, encoding: str, raw: bytes) -> Reply:
        """Inflate and ingest one body; the OTLP answer (status, content type, body, headers)."""
        try:
            body = decompress(raw, encoding, self.max_bytes)
            result = self.ingest.accept(signal, body, fmt, "http")
        except RecursionError:  # a parser nesting past Python's stack is bad input, not our failure
            return self.error(InvalidPayload("payload nested too deeply"), fmt, signal)
        except RequestError as exc:
            return self.error(exc, fmt, signal)
        except Exception:  # receiver boundary: answer 500, never die
            logger.exception("http %s: internal error", signal)
            return self.error(RequestError("internal error"), fmt, signal, status=500)
        return 200, _ctype(fmt), _encode(result.response, fmt), {}

    def route(self, route: GetRoute) -> Reply:
        try:
            status, ctype, body = route()
        except Exception:
            logger.exception("http: GET route failed")
            return 500, "text/plain", b"internal error\n", {}
        return status, ctype, body, {}

    def authorized(self, headers: dict[str, str]) -> bool:
        if self.auth_token is None:
            return True
        given = headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.auth_token}".encode())

    def error(self, exc: RequestError, fmt: str, signal: str, status: int | None = None,
              ) -> Reply:
        """An OTLP error answer: the status code and a google.rpc.Status body in the request's format."""
        code = status or exc.http_status
        if not isinstance(exc, Overloaded):
            logger.warning("http %s: %d %s", signal, code, exc)
        headers = {}
        if isinstance(exc, Overloaded):
            headers["Retry-After"] = str(exc.retry_after_s)
        if isinstance(exc, Unauthenticated):
            headers["WWW-Authenticate"] = "Bearer"
        status_msg = status_pb2.Status(code=_GRPC_CODE.get(code, 2), message=str(exc))
        return code, _ctype(fmt), _encode(status_msg, fmt), headers


class _Connection:
    """One client connection: requests read one at a time, each whole before it is processed."""

    def __init__(self, server: HttpReceiver, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self.busy = False  # a request is being read or processed (stop() lets it finish)
        self.loop = asyncio.get_running_loop()

    async def serve(self) -> None:
        while True:
            deadline = self.loop.time() + self.server.request_timeout_s
            try:
                async with asyncio.timeout_at(deadline):  # the whole request, however slowly it trickles
                    request = await self._next_request()
                    if request is None:
                        return
                    self.busy = True
                    work = await self._receive(request)
            except _Answer as answer:
                await self._answer_and_close(answer, deadline)
                return
            except h11.RemoteProtocolError as exc:
                logger.warning("http: %d malformed request: %s", exc.error_status_hint, exc)
                await self._answer_and_close(_status_answer(exc.error_status_hint, f"malformed request: {exc}"),
                                             deadline)
                return
            except TimeoutError:
                if self.busy or self._partial():
                    logger.warning("http: 408 request not received within %g s", self.server.request_timeout_s)
                    await self._answer_and_close(_status_answer(
                        408, f"request not received within {self.server.request_timeout_s:g} s"), None)
                return  # else: an idle keep-alive connection, closed quietly
            # Processing is not under the deadline: once received, a request is answered, never cut off.
            status, ctype, body, headers = await self.loop.run_in_executor(self.server.pool, work)
            await self._send(status, ctype, body, headers, close=False)
            self.busy = False
            if self.server.closing or self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
                return
            self.h11.start_next_cycle()

    def _partial(self) -> bool:
        """Whether part of a next request has arrived (a slow client) rather than nothing (an idle one)."""
        return self.h11.their_state is not h11.IDLE or bool(self.h11.trailing_data[0])

    async def _next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            if self.h11.they_are_waiting_for_100_continue:
                self.writer.write(self.h11.send(h11.InformationalResponse(status_code=100, headers=[])))
            data = await self.reader.read(READ_CHUNK)
            self.h11.receive_data(data)

    async def _next_request(self) -> h11.Request | None:
        event = await self._next_event()
        if isinstance(event, h11.ConnectionClosed):
            return None
        if isinstance(event, h11.Request):
            return event
        raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}", error_status_hint=400)

    async def _receive(self, request: h11.Request) -> Work:
        """Read the request's body under its checks; the work that answers it (run on the pool)."""
        server = self.server
        method = request.method.decode("ascii", "replace")
        path = request.target.decode("ascii", "replace")
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in request.headers}
        if method == "GET":
            await self._read_body(MAX_HEADER_BYTES, "protobuf", "get")
            route = server.get_routes.get(path.split("?", 1)[0])
            if route is None:
                return lambda: (404, "text/plain", b"not found\n", {})
            if path.split("?", 1)[0] not in PUBLIC_PATHS and not server.authorized(headers):
                return lambda: (401, "text/plain", b"missing or wrong bearer token\n", {"WWW-Authenticate": "Bearer"})
            return functools.partial(server.route, route)
        if method != "POST":
            raise _Answer(405, "text/plain", b"method not allowed\n", {"Allow": "GET, POST"})
        signal = signal_for_path(path)
        if signal is None:
            raise _Answer(404, "text/plain", b"not an OTLP path: POST /v1/traces, /v1/logs or /v1/metrics\n")
        fmt = "protobuf"
        try:
            fmt = body_format(headers.get("content-type"))
            if not server.authorized(headers):
                raise Unauthenticated("missing or wrong bearer token")
            encoding = content_encoding(headers.get("content-encoding"))
            length = headers.get("content-length")
            if length is not None and int(length) > server.max_bytes:  # h11 has checked it is digits
                raise PayloadTooLarge(f"body of {length} bytes exceeds the {server.max_bytes}-byte limit")
        except (UnsupportedMediaType, Unauthenticated, PayloadTooLarge) as exc:
            raise _Answer(*server.error(exc, fmt, signal)) from None
        raw = await self._read_body(server.max_bytes, fmt, signal)
        return functools.partial(server.process, signal, fmt, encoding, raw)

    async def _read_body(self, limit: int, fmt: str, signal: str) -> bytes:
        """The whole body, however it is framed; over ``limit`` bytes it is a 413 (and the connection closes)."""
        parts: list[bytes] = []
        total = 0
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                total += len(event.data)
                if total > limit:
                    exc = PayloadTooLarge(f"body exceeds the {limit}-byte limit")
                    raise _Answer(*self.server.error(exc, fmt, signal))
                parts.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(parts)
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("client closed the connection mid-request")
            else:
                raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}", error_status_hint=400)

    async def _send(self, status: int, ctype: str, body: bytes, headers: dict[str, str], close: bool) -> None:
        """Write one answer; a client that does not read it within the request timeout is dropped."""
        fields = [("Content-Type", ctype), ("Content-Length", str(len(body))), *headers.items()]
        if close:
            fields.append(("Connection", "close"))
        data = self.h11.send(h11.Response(status_code=status, headers=fields))
        data += self.h11.send(h11.Data(data=body)) or b""
        data += self.h11.send(h11.EndOfMessage()) or b""
        self.writer.write(data)
        async with asyncio.timeout(self.server.request_timeout_s):
            await self.writer.drain()

    async def _answer_and_close(self, answer: _Answer, deadline: float | None) -> None:
        """Answer, stop sending, and drop what the client still sends for a while, so it reads our answer
        instead of a reset; the unread rest of the request is never parsed."""
        with contextlib.suppress(h11.LocalProtocolError, ConnectionError, TimeoutError):
            if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await self._send(answer.status, answer.ctype, answer.body, answer.headers, close=True)
        if self.writer.transport.is_closing():
            return
        with contextlib.suppress(OSError, RuntimeError):
            if self.writer.can_write_eof():
                self.writer.write_eof()
        budget = LINGER_BYTES_FACTOR * self.server.max_bytes
        linger_end = self.loop.time() + LINGER_S
        if deadline is not None:
            linger_end = min(linger_end, max(deadline, self.loop.time() + 0.5))
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout_at(linger_end):
                while budget > 0:
                    chunk = await self.reader.read(READ_CHUNK)
                    if not chunk:
                        break
                    budget -= len(chunk)


def _status_answer(status: int, message: str) -> _Answer:
    """A framing-level error (the request's format unknown): a protobuf google.rpc.Status, as OTLP expects."""
    grpc_code = _GRPC_CODE.get(status, 3 if status < 500 else 2)
    return _Answer(status, "application/x-protobuf", status_pb2.Status(code=grpc_code, message=message)
                   .SerializeToString())


# google.rpc.Code numbers for the Status body of an error answer.
_GRPC_CODE = {400: 3, 401: 16, 408: 4, 413: 8, 415: 3, 429: 8, 431: 8, 500: 13, 503: 14}


def _ctype(fmt: str) -> str:
    return "application/json" if fmt == "json" else "application/x-protobuf"


def _encode(msg: Any, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(json_format.MessageToDict(msg)).encode()
    return msg.SerializeToString()
