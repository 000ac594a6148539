"""Exactly once under crashes, as they really happen: kill -9 of the collector's main pid (what the OOM
killer does: its writer processes are left running), SIGKILL of one writer, SIGTERM under load.

Clients retry what they did not see acknowledged, with the same span ids, over gRPC and HTTP at once,
while compaction runs every 2 s. Stored rows are counted in the Delta table's own files, not through
the reader's views, so a read-time de-duplication cannot hide a row stored twice.
Time budget: about 90 s on an idle 2-core machine.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import grpc
from harness import CollectorProcess, free_port, leftover, trace_request
from harness import stored_span_keys as stored_keys
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

KILL_ROUNDS = 10
SPANS_PER_REQUEST = 100
ENV = {"SPANLAKE_FLUSH_INTERVAL_S": "0.3", "SPANLAKE_COMPACT_INTERVAL_S": "2", "SPANLAKE_WRITERS": "2"}


def _request(rng: random.Random) -> tuple[bytes, set[str]]:
    req, keys = trace_request(rng, SPANS_PER_REQUEST, "crash")
    return req.SerializeToString(), keys


class RetryingSender(threading.Thread):
    """A client that re-sends every request until it sees it acknowledged, across collector restarts."""

    def __init__(self, protocol: str, grpc_port: int, http_port: int, seed: int) -> None:
        super().__init__(daemon=True, name=f"sender-{protocol}")
        self.protocol, self.grpc_port, self.http_port = protocol, grpc_port, http_port
        self.rng = random.Random(seed)
        self.acked: list[str] = []
        self.attempts = 0
        self.stopping = threading.Event()
        self.deadline = time.monotonic() + 240  # bounded whatever happens

    def run(self) -> None:
        pending: tuple[bytes, set[str]] | None = None
        while time.monotonic() < self.deadline:
            if pending is None:
                if self.stopping.is_set():
                    return
                pending = _request(self.rng)
            self.attempts += 1
            if self._send(pending[0]):
                self.acked.extend(pending[1])
                pending = None
            else:
                time.sleep(0.05)  # refused, reset or timed out: the same request again

    def _send(self, body: bytes) -> bool:
        if self.protocol == "grpc":
            try:
                with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
                    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
                    stub.Export(trace_service_pb2.ExportTraceServiceRequest.FromString(body), timeout=5)
                return True
            except grpc.RpcError:
                return False
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/v1/traces", data=body, method="POST",
                                     headers={"Content-Type": "application/x-protobuf"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                resp.read()
                return resp.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False


def _wait_stored(data: Path, acked: set[str], timeout: float = 60.0) -> Counter[str]:
    deadline = time.monotonic() + timeout
    stored = stored_keys(data)
    while time.monotonic() < deadline and not acked <= stored.keys():
        time.sleep(0.3)
        stored = stored_keys(data)
    return stored


def _assert_exactly_once(acked: set[str], stored: Counter[str]) -> None:
    missing = acked - stored.keys()
    doubled = {k: n for k, n in stored.items() if n > 1}
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged spans lost"
    assert not doubled, f"{len(doubled)} spans stored more than once (e.g. {next(iter(doubled.items()))})"


def _senders(grpc_port: int, http_port: int) -> list[RetryingSender]:
    senders = [RetryingSender("grpc", grpc_port, http_port, 1), RetryingSender("http", grpc_port, http_port, 2)]
    for s in senders:
        s.start()
    return senders


def _finish(senders: list[RetryingSender]) -> set[str]:
    for s in senders:
        s.stopping.set()
    for s in senders:
        s.join(120)
        assert not s.is_alive(), f"{s.name} never got its last request acknowledged"
    return {k for s in senders for k in s.acked}


def test_kill_9_of_the_main_pid_under_load_stores_every_span_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    grpc_port, http_port = free_port(), free_port()
    rng = random.Random(5)
    collector = CollectorProcess(data, env=ENV, grpc_port=grpc_port, http_port=http_port).start()
    senders = _senders(grpc_port, http_port)
    for round_ in range(KILL_ROUNDS):
        time.sleep(rng.uniform(0.6, 1.6))
        children = collector.kill()
        assert children, "the collector had no writer processes to leave behind"
        left = leftover(children, timeout=3.0)
        assert not left, f"round {round_}: {len(left)} process(es) outlived the collector by 3 s: {left}"
        collector = CollectorProcess(data, env=ENV, grpc_port=grpc_port, http_port=http_port).start()
    time.sleep(1.0)
    acked = _finish(senders)
    try:
        assert len(acked) > 5 * SPANS_PER_REQUEST, "the senders never got going"
        assert sum(s.attempts for s in senders) > len(acked) // SPANS_PER_REQUEST, "no request was ever retried"
        stored = _wait_stored(data, acked)
    finally:
        assert collector.stop() == 0, collector.read_log()[-3000:]
    _assert_exactly_once(acked, stored)
    assert set(stored) == acked, "a stored span was never acknowledged, though every request was retried until it was"


def test_sigkill_of_one_writer_under_load_stores_every_span_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    grpc_port, http_port = free_port(), free_port()
    collector = CollectorProcess(data, env=ENV, grpc_port=grpc_port, http_port=http_port).start()
    senders = _senders(grpc_port, http_port)
    try:
        for _ in range(2):
            time.sleep(1.2)
            writers = [p for p in collector.children()
                       if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()
                       and b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]
            assert writers
            os.kill(writers[0], signal.SIGKILL)
        time.sleep(1.0)
        acked = _finish(senders)
        stored = _wait_stored(data, acked)
    finally:
        assert collector.stop() == 0, collector.read_log()[-3000:]
    _assert_exactly_once(acked, stored)


def test_sigterm_under_load_commits_everything_and_exits_0(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    grpc_port, http_port = free_port(), free_port()
    env = {**ENV, "SPANLAKE_SHUTDOWN_TIMEOUT_S": "30"}
    collector = CollectorProcess(data, env=env, grpc_port=grpc_port, http_port=http_port).start()
    senders = _senders(grpc_port, http_port)
    time.sleep(2.0)
    assert collector.proc is not None
    children = collector.children()
    started = time.monotonic()
    collector.proc.send_signal(signal.SIGTERM)
    code = collector.proc.wait(35)
    took = time.monotonic() - started
    for s in senders:  # what they send from now on is refused; only what was acknowledged counts
        s.deadline = 0
        s.join(10)
    collector.log.close()
    acked = {k for s in senders for k in s.acked}
    assert code == 0, collector.read_log()[-3000:]
    assert took < 30, f"shutdown took {took:.1f}s"
    assert not leftover(children, timeout=3.0)
    assert len(acked) > 5 * SPANS_PER_REQUEST
    stored = stored_keys(data)  # nothing is running now: this is what the lake holds
    _assert_exactly_once(acked, stored)
    again = CollectorProcess(data, env=env).start()  # the WAL replays to nothing new
    try:
        time.sleep(2.0)
        assert stored_keys(data) == stored
    finally:
        assert again.stop() == 0
