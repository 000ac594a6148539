"""Test harness: a real collector process on free loopback ports, and bounded waits on the lake."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from spanlake.collector.storage.reader import open_snapshot

REPO = Path(__file__).resolve().parents[1]
# Copies of ../shared/peer-spans and ../shared/tools/replay_fixtures.py, so a clone anywhere runs its tests.
PEER_SPANS = REPO / "tests" / "fixtures" / "peer-spans"
REPLAY_TOOL = REPO / "tests" / "tools" / "replay_fixtures.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class CollectorProcess:
    """A `spanlake collector` subprocess; ``stop()`` ends it gracefully, ``kill()`` with SIGKILL."""

    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    grpc_port: int = 0
    http_port: int = 0

    def start(self, timeout: float = 60.0) -> CollectorProcess:
        ready = self.data_dir / "collector.json"
        ready.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "spanlake.ui.cli", "collector", "--data-dir", str(self.data_dir),
               "--grpc-port", str(self.grpc_port or 0), "--http-port", str(self.http_port or 0), *self.extra_args]
        env = {**os.environ, **self.env}
        self.log = open(self.data_dir.parent / f"{self.data_dir.name}-collector.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited with {self.proc.returncode}: {self.read_log()[-3000:]}")
            try:
                info = json.loads(ready.read_text())
                self.grpc_port, self.http_port = info["grpc_port"], info["http_port"]
                return self
            except (FileNotFoundError, json.JSONDecodeError):
                time.sleep(0.05)
        raise TimeoutError("collector did not become ready")

    def read_log(self) -> str:
        path = self.data_dir.parent / f"{self.data_dir.name}-collector.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def stop(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        return int(self.proc.returncode)

    def kill(self) -> list[int]:
        """SIGKILL the collector's main process only, as the OOM killer or ``kill -9 <pid>`` does; whatever it
        spawned is left to fend for itself. Returns the pids its children had, for :func:`leftover`."""
        assert self.proc is not None
        children = _children(self.proc.pid)
        self.proc.kill()
        self.proc.wait(10)
        self.log.close()
        return children

    def children(self) -> list[int]:
        assert self.proc is not None
        return _children(self.proc.pid)


def leftover(pids: list[int], timeout: float = 3.0) -> list[int]:
    """Which of ``pids`` still run after ``timeout`` seconds (checked until they are gone or it runs out)."""
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if _running(pid)]
    return alive


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def query(data_dir: Path, sql: str) -> pa.Table:
    with open_snapshot(data_dir / "lake") as snap:
        return snap.sql(sql)


def wait_for(data_dir: Path, sql: str, predicate: Callable[[Any], bool], timeout: float = 15.0) -> Any:
    """Poll ``sql`` (its first cell) until ``predicate`` holds; bounded by ``timeout``; returns the last value."""
    deadline = time.monotonic() + timeout
    value: Any = None
    while time.monotonic() < deadline:
        rows = query(data_dir, sql).to_pylist()
        value = next(iter(rows[0].values())) if rows else None
        if predicate(value):
            return value
        time.sleep(0.1)
    return value


def count_when(data_dir: Path, table: str, expected: int, where: str = "true", timeout: float = 15.0) -> int:
    """Wait until ``table`` has at least ``expected`` rows matching ``where``; returns the count seen."""
    return int(wait_for(data_dir, f"select count(*) from {table} where {where}",
                        lambda v: v is not None and v >= expected, timeout) or 0)


def stored_span_keys(data_dir: Path) -> Counter[str]:
    """trace_id || span_id of every row in the spans table's current Delta snapshot, with multiplicity: the
    rows as stored, not as the reader's views show them (those collapse duplicates at read time)."""
    table = DeltaTable(str(data_dir / "lake" / "spans")).to_pyarrow_dataset().to_table(columns=["trace_id", "span_id"])
    return Counter(t + s for t, s in zip(table.column("trace_id").to_pylist(), table.column("span_id").to_pylist()))


def trace_request(rng: random.Random, spans: int, name: str = "span",
                  ) -> tuple[trace_service_pb2.ExportTraceServiceRequest, set[str]]:
    """An export of ``spans`` spans with random ids (from ``rng``), and their trace_id || span_id keys."""
    req = trace_service_pb2.ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    keys = set()
    now = time.time_ns()
    for _ in range(spans):
        tid, sid = rng.randbytes(16), rng.randbytes(8)
        ss.spans.append(trace_pb2.Span(trace_id=tid, span_id=sid, name=name, start_time_unix_nano=now,
                                       end_time_unix_nano=now + 1000, attributes=[common_pb2.KeyValue(
                                           key="k", value=common_pb2.AnyValue(string_value="v" * 50))]))
        keys.add(tid.hex() + sid.hex())
    return req, keys
