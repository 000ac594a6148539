"""The fake LLM HTTP server: routing, SSE framing and timing, error injection, start/stop.

Stdlib only (ThreadingHTTPServer, HTTP/1.1 keep-alive with chunked SSE) so the base install stays light.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import _anthropic_routes as anthropic_routes
from . import _catalog
from . import _openai_routes as openai_routes
from ._catalog import FAILURE_MODELS, Swap
from ._openai_routes import StreamItem

logger = logging.getLogger(__name__)

FAIL_HEADER = "x-fake-llm-fail"
"""Request header forcing a failure: `429`, `500`, `timeout` or `midstream`, optionally `:<probability>`."""
TTFT_HEADER = "x-fake-llm-ttft"
TOKEN_DELAY_HEADER = "x-fake-llm-token-delay"
TOKENS_HEADER = "x-fake-llm-tokens"
"""Request header forcing the number of output tokens (e.g. 200 for the overhead benchmark)."""


@dataclass(frozen=True)
class FakeLLMConfig:
    """Timing and failure behaviour of one server."""

    ttft_s: float = 0.15
    token_delay_s: float = 0.02
    retry_after_s: float = 1.0
    hang_s: float = 30.0
    fail_seed: int = 0
    swaps: tuple[Swap, ...] = ()
    """Silent model swaps (see `Swap`), each active once the server has run its `after_s`."""


class FakeLLMServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer carrying its config; `shutdown()` also releases hung requests and closes."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], config: FakeLLMConfig) -> None:
        super().__init__(address, _Handler)
        self.config = config
        self.stopping = threading.Event()
        self.rng = random.Random(config.fail_seed)
        self.rng_lock = threading.Lock()
        self.started = time.monotonic()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL without path, e.g. `http://127.0.0.1:54321`."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start_background(self) -> FakeLLMServer:
        """Serve from a daemon thread and return self."""
        self._thread = threading.Thread(target=self.serve_forever, name="fake-llm", daemon=True)
        self._thread.start()
        return self

    def swap_for(self, model: str, provider: str) -> Swap | None:
        """The swap now in force for a request model, if any (the last matching one wins)."""
        info = _catalog.lookup(model, provider)
        uptime = time.monotonic() - self.started
        active = [s for s in self.config.swaps if s.applies_to(model, info) and uptime >= s.after_s]
        return active[-1] if active else None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-stream are normal here (early close tests); log at debug only."""
        logger.debug("fake-llm request from %s failed", client_address, exc_info=True)  # noqa: LOG014 - in handler

    def shutdown(self) -> None:
        self.stopping.set()
        super().shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small writes on keep-alive connections would wait ~40 ms otherwise
    server: FakeLLMServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    # --- routing ---------------------------------------------------------------------------
    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send_json(200, openai_routes.models())
        elif self.path == "/healthz":
            self._send_json(200, {"status": "ok"})
        else:
            self._send_json(404, openai_routes.error_body(404, f"no route {self.path}"))

    def do_POST(self) -> None:
        body = self._read_json()
        path = self.path.split("?")[0].rstrip("/")
        anthropic = path == "/v1/messages"
        if path not in ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/messages"):
            self._send_json(404, openai_routes.error_body(404, f"no route {self.path}"))
            return
        failure = self._failure(str(body.get("model", "")))
        if failure in ("429", "500") or (failure == "midstream" and not body.get("stream")):
            self._send_error(429 if failure == "429" else 500, anthropic)
            return
        if failure == "timeout":
            self.server.stopping.wait(self.server.config.hang_s)
            self.close_connection = True
            return
        self._answer(path, body, midstream=failure == "midstream")

    def _answer(self, path: str, body: dict[str, Any], *, midstream: bool) -> None:
        forced = self._header_int(TOKENS_HEADER)
        stream = bool(body.get("stream"))
        swap = self.server.swap_for(str(body.get("model", "")), "anthropic" if path == "/v1/messages" else "openai")
        if path == "/v1/embeddings":
            self._send_json(200, openai_routes.embeddings(body))
        elif path == "/v1/chat/completions":
            reply = openai_routes.chat_reply(body, forced, swap)
            if stream:
                include = bool((body.get("stream_options") or {}).get("include_usage"))
                self._send_sse(openai_routes.chat_stream(reply, include), midstream)
            else:
                self._delay_whole(reply.output_tokens)
                self._send_json(200, openai_routes.chat_completion(reply))
        elif path == "/v1/responses":
            reply = openai_routes.responses_reply(body, forced, swap)
            if stream:
                self._send_sse(openai_routes.response_stream(reply, body), midstream)
            else:
                self._delay_whole(reply.output_tokens)
                self._send_json(200, openai_routes.response(reply, body))
        else:
            reply = anthropic_routes.messages_reply(body, forced, swap)
            if stream:
                self._send_sse(anthropic_routes.message_stream(reply), midstream)
            else:
                self._delay_whole(reply.output_tokens)
                self._send_json(200, anthropic_routes.message(reply))

    # --- failure injection -----------------------------------------------------------------
    def _failure(self, model: str) -> str | None:
        if model in FAILURE_MODELS:
            return FAILURE_MODELS[model]
        raw = self.headers.get(FAIL_HEADER)
        if not raw:
            return None
        kind, _, probability = raw.partition(":")
        if probability:
            with self.server.rng_lock:
                if self.server.rng.random() >= float(probability):
                    return None
        return kind.strip()

    def _send_error(self, status: int, anthropic: bool) -> None:
        message = "Rate limit reached (fake-llm)" if status == 429 else "Internal server error (fake-llm)"
        payload = (
            anthropic_routes.error_body(status, message)
            if anthropic
            else openai_routes.error_body(status, message)
        )
        extra = {"Retry-After": f"{self.server.config.retry_after_s:g}"} if status == 429 else {}
        self._send_json(status, payload, extra)

    # --- timing ----------------------------------------------------------------------------
    def _ttft(self) -> float:
        return self._header_float(TTFT_HEADER, self.server.config.ttft_s)

    def _token_delay(self) -> float:
        return self._header_float(TOKEN_DELAY_HEADER, self.server.config.token_delay_s)

    def _delay_whole(self, tokens: int) -> None:
        """A non-streaming answer takes as long as its stream would have."""
        self._sleep(self._ttft() + self._token_delay() * tokens)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.server.stopping.wait(seconds)

    # --- I/O -------------------------------------------------------------------------------
    def _read_json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _header_float(self, name: str, default: float) -> float:
        raw = self.headers.get(name)
        try:
            return float(raw) if raw is not None else default
        except ValueError:
            return default

    def _header_int(self, name: str) -> int | None:
        raw = self.headers.get(name)
        return int(raw) if raw and raw.isdigit() else None

    def _send_json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_fake")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_sse(self, items: Iterator[StreamItem], midstream: bool) -> None:
        """Stream events with chunked framing: TTFT before the first, a delay before each token."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        try:
            self._write_events(list(items), midstream)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client closed the stream early

    def _write_events(self, events: list[StreamItem], midstream: bool) -> None:
        cut = len(events) // 2 if midstream else None
        first, delay = True, self._token_delay()
        for index, (name, data, is_token) in enumerate(events):
            if index == cut:
                self.close_connection = True  # drop the connection without the terminating chunk
                return
            self._sleep(self._ttft() if first else (delay if is_token else 0.0))
            first = False
            self._write_chunk(_sse_frame(name, data))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write_chunk(self, payload: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.wfile.flush()


def _sse_frame(name: str | None, data: Any) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {text}\n\n".encode()


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ttft_s: float = 0.15,
    token_delay_s: float = 0.02,
    retry_after_s: float = 1.0,
    hang_s: float = 30.0,
    fail_seed: int = 0,
    swaps: tuple[Swap, ...] = (),
    background: bool = True,
) -> FakeLLMServer:
    """Start the fake server; port 0 picks a free port (read it from `.server_address`).

    With `background=True` (default) it serves from a daemon thread and returns at once; otherwise it
    blocks in `serve_forever` until `shutdown()` is called from another thread.
    """
    config = FakeLLMConfig(
        ttft_s=ttft_s,
        token_delay_s=token_delay_s,
        retry_after_s=retry_after_s,
        hang_s=hang_s,
        fail_seed=fail_seed,
        swaps=swaps,
    )
    server = FakeLLMServer((host, port), config)
    if background:
        return server.start_background()
    server.serve_forever()
    return server
