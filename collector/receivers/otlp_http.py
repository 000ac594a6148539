"""OTLP/HTTP receiver: POST {prefix}/v1/{traces,logs,metrics}, GET /healthz and /metrics.

Framing, decompression and status mapping only; everything else is :class:`Ingest`'s job.
Paths may carry a prefix (Langfuse's exporter posts to /api/public/otel/v1/traces).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from google.rpc import status_pb2
from spanlake.collector.errors import (
    InvalidPayload,
    Overloaded,
    PayloadTooLarge,
    RequestError,
    Unauthenticated,
)
from spanlake.collector.ingest import Ingest
from spanlake.collector.receivers.body import body_format, decompress

logger = logging.getLogger(__name__)

SIGNAL_SUFFIXES = {"/v1/traces": "traces", "/v1/logs": "logs", "/v1/metrics": "metrics"}
GetRoute = Callable[[], tuple[int, str, bytes]]


def signal_for_path(path: str) -> str | None:
    path = path.split("?", 1)[0].rstrip("/")
    for suffix, signal in SIGNAL_SUFFIXES.items():
        if path.endswith(suffix):
            return signal
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http %s", format % args)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        route = self.server.get_routes.get(path)
        if route is None:
            self._send(404, "text/plain", b"not found\n")
            return
        if path not in ("/healthz",) and not self._authorized():
            self._send(401, "text/plain", b"missing or wrong bearer token\n", {"WWW-Authenticate": "Bearer"})
            return
        status, ctype, body = route()
        self._send(status, ctype, body)

    def do_POST(self) -> None:
        signal = signal_for_path(self.path)
        if signal is None:
            self._drain()
            self._send(404, "text/plain", b"not an OTLP path: POST /v1/traces, /v1/logs or /v1/metrics\n")
            return
        fmt = "protobuf"
        try:
            fmt = body_format(self.headers.get("Content-Type"))
            if not self._authorized():
                raise Unauthenticated("missing or wrong bearer token")
            raw = self._read_body()
            body = decompress(raw, self.headers.get("Content-Encoding"), self.server.max_bytes)
            result = self.server.ingest.accept(signal, body, fmt, "http")
        except RequestError as exc:
            self._error(exc, fmt, signal)
            return
        except Exception:  # receiver boundary: answer 500, never die
            logger.exception("http %s: internal error", signal)
            self._error(RequestError("internal error"), fmt, signal, status=500)
            return
        self._send(200, _ctype(fmt), _encode(result.response, fmt))

    def _authorized(self) -> bool:
        token = self.server.auth_token
        if token is None:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    def _read_body(self) -> bytes:
        limit = self.server.max_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            self._discard(length)
            raise PayloadTooLarge(f"body of {length} bytes exceeds the {limit}-byte limit")
        return self.rfile.read(length)

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            total += size
            if total > limit:
                self.close_connection = True
                raise PayloadTooLarge(f"body exceeds the {limit}-byte limit")
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _discard(self, length: int) -> None:
        """Read and drop a refused body so the client sees our answer, not a broken pipe;
        past 4x the limit, just close the connection."""
        self.close_connection = True
        if length > 4 * self.server.max_bytes:
            return
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                return
            length -= len(chunk)

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= self.server.max_bytes:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    def _error(self, exc: RequestError, fmt: str, signal: str, status: int | None = None) -> None:
        code = status or exc.http_status
        if not isinstance(exc, (Overloaded,)):
            logger.warning("http %s: %d %s", signal, code, exc)
        headers = {}
        if isinstance(exc, Overloaded):
            headers["Retry-After"] = str(exc.retry_after_s)
        if isinstance(exc, Unauthenticated):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, (PayloadTooLarge, InvalidPayload)) and code == 413:
            self.close_connection = True
        status_msg = status_pb2.Status(code=_GRPC_CODE.get(code, 2), message=str(exc))
        self._send(code, _ctype(fmt), _encode(status_msg, fmt), headers)

    def _send(self, status: int, ctype: str, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


# google.rpc.Code numbers for the Status body of an error answer.
_GRPC_CODE = {400: 3, 401: 16, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}


def _ctype(fmt: str) -> str:
    return "application/json" if fmt == "json" else "application/x-protobuf"


def _encode(msg: Any, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(json_format.MessageToDict(msg)).encode()
    return msg.SerializeToString()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], ingest: Ingest, max_bytes: int, auth_token: str | None,
                 get_routes: dict[str, GetRoute]) -> None:
        self.ingest = ingest
        self.max_bytes = max_bytes
        self.auth_token = auth_token
        self.get_routes = get_routes
        super().__init__(addr, _Handler)


class HttpReceiver:
    """Runs the OTLP/HTTP server in a background thread."""

    def __init__(self, host: str, port: int, ingest: Ingest, max_bytes: int, auth_token: str | None,
                 get_routes: dict[str, GetRoute]) -> None:
        self._server = _Server((host, port), ingest, max_bytes, auth_token, get_routes)
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
