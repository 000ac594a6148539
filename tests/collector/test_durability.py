"""Acknowledged spans survive kill -9 of the collector; retries and replays are stored once."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import grpc
from harness import CollectorProcess, count_when, stored_span_keys, trace_request
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

KILLS = 10


def _request(rng: random.Random, spans: int) -> tuple[trace_service_pb2.ExportTraceServiceRequest, set[str]]:
    return trace_request(rng, spans, "durable")


class Sender(threading.Thread):
    """Sends until the collector dies; remembers what was acknowledged and what was in flight."""

    def __init__(self, target: str, rng: random.Random, retry: tuple | None) -> None:
        super().__init__(daemon=True)
        self.target, self.rng, self.retry = target, rng, retry
        self.acked: set[str] = set()
        self.in_flight: tuple | None = None

    def run(self) -> None:
        with grpc.insecure_channel(self.target) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            pending = self.retry
            for _ in range(10_000):  # bounded; the collector is killed long before
                req, keys = pending or _request(self.rng, 200)
                pending = None
                self.in_flight = (req, keys)
                try:
                    stub.Export(req, timeout=5)
                except grpc.RpcError:
                    return  # the collector died with this request un-acknowledged: retry it later
                self.acked |= keys
                self.in_flight = None


def test_acknowledged_spans_survive_repeated_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = {"SPANLAKE_FLUSH_INTERVAL_S": "0.3"}
    rng = random.Random(7)
    acked: set[str] = set()
    retry = None
    for _ in range(KILLS):
        collector = CollectorProcess(data, env=env).start()
        sender = Sender(collector.grpc_target, rng, retry)
        sender.start()
        time.sleep(rng.uniform(0.4, 1.2))
        collector.kill()
        sender.join(30)
        assert not sender.is_alive()
        acked |= sender.acked
        retry = sender.in_flight  # a client retries what it never saw acknowledged
    final = CollectorProcess(data, env=env).start()
    try:
        assert len(acked) > 1000, "the sender never got going"
        count_when(data, "spans", len(acked), timeout=60)
        rows = stored_span_keys(data)  # as stored: the reader's views would hide a row stored twice
    finally:
        assert final.stop() == 0
    missing = acked - rows.keys()
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged spans lost"
    assert sum(rows.values()) == len(rows), f"{sum(rows.values()) - len(rows)} duplicate rows"


def test_many_small_flushes_lose_nothing(tmp_path: Path) -> None:
    """Flushes that fall in the middle of a WAL read chunk must not skip the chunk's other records."""
    data = tmp_path / "data"
    data.mkdir()
    collector = CollectorProcess(data, env={"SPANLAKE_FLUSH_MAX_ROWS": "700", "SPANLAKE_WRITERS": "1"}).start()
    rng = random.Random(3)
    requests = [_request(rng, 300) for _ in range(60)]
    with grpc.insecure_channel(collector.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        for req, _keys in requests:
            stub.Export(req, timeout=10)
    try:
        assert count_when(data, "spans", 18_000, timeout=60) == 18_000
    finally:
        assert collector.stop() == 0


def test_a_dead_writer_is_restarted_and_shutdown_still_completes(tmp_path: Path) -> None:
    """A writer process that dies (here: SIGKILL) is respawned and replays its WAL shard; the
    collector neither loses acknowledged spans nor hangs when it is stopped afterwards."""
    import os
    import signal as sig

    from harness import _children, http_get

    data = tmp_path / "data"
    data.mkdir()
    collector = CollectorProcess(data, env={"SPANLAKE_FLUSH_INTERVAL_S": "0.3"}).start()
    rng = random.Random(11)
    acked: set[str] = set()
    with grpc.insecure_channel(collector.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        for i in range(20):
            req, keys = _request(rng, 100)
            stub.Export(req, timeout=10)
            acked |= keys
            if i == 5:
                assert collector.proc is not None
                writers = [p for p in _children(collector.proc.pid)
                           if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()
                           and b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]
                os.kill(writers[0], sig.SIGKILL)
    try:
        assert count_when(data, "spans", len(acked), timeout=60) == len(acked)
        status, body = http_get(collector.http_url + "/metrics")
        assert b"spanlake_writer_restarts_total 1" in body
    finally:
        assert collector.stop(timeout=60) == 0
