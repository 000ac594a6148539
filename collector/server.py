"""Wires a collector: WAL → ingest → gRPC + HTTP receivers, and the lake-writer process.

Start order matters for durability: the WAL repairs a torn tail before the writer replays it.
Stop order drains: receivers stop taking requests, then the writer commits what the WAL holds.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from spanlake.collector.ingest import Ingest
from spanlake.collector.quarantine import Quarantine
from spanlake.collector.receivers.otlp_grpc import GrpcReceiver
from spanlake.collector.receivers.otlp_http import GetRoute, HttpReceiver
from spanlake.collector.self_metrics import SelfMetrics
from spanlake.collector.settings import Settings
from spanlake.collector.storage import schema
from spanlake.collector.storage.lake_writer import ensure_tables
from spanlake.collector.wal import WriteAheadLog, list_segments, segment_path, split_position, try_lock
from spanlake.collector.writer_process import WriterPool

logger = logging.getLogger(__name__)

READY_FILE = "collector.json"
LOCK_FILE = "collector.lock"
MIN_BACKLOG_BYTES = 16 * 1024 * 1024  # never refuse below this, even before any rate is measured


class WriterCapacity:
    """WAL bytes per second the writers can convert and commit when busy (a weighted average).

    Measured per busy second, not per wall second: a writer that waits for data would otherwise
    look slow, the receivers would refuse more, and the writers would wait even more."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[float, int]] = {}
        self._rates: dict[int, float] = {}

    def observe(self, shard: int, busy_s: float, consumed_bytes: int) -> None:
        last = self._last.get(shard)
        if last is not None and busy_s < last[0]:
            last = None  # the writer was restarted: its counters began again
        elif last is not None and busy_s - last[0] < 0.2:
            return  # too little work since the last sample to say anything
        self._last[shard] = (busy_s, consumed_bytes)
        if last is None:
            return
        sample = (consumed_bytes - last[1]) / (busy_s - last[0])
        previous = self._rates.get(shard)
        self._rates[shard] = sample if previous is None else 0.7 * previous + 0.3 * sample

    def bytes_per_s(self) -> float:
        return sum(self._rates.values())


def lock_data_dir(data_dir: Path) -> int:
    """Take the data directory's exclusive lock: two collectors appending to one WAL would interleave
    frames. Released by the kernel when the process dies, so a restart after a crash is never refused."""
    fd = try_lock(data_dir / LOCK_FILE)
    if fd is None:
        raise RuntimeError(f"another collector is running on {data_dir} (it holds {LOCK_FILE})")
    return fd


class Collector:
    """One collector: receivers on both protocols, one WAL shard per writer process."""

    def __init__(self, settings: Settings, extra_routes: dict[str, GetRoute] | None = None) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = lock_data_dir(settings.data_dir)
        ensure_tables(settings.lake_dir)
        self.metrics = SelfMetrics()
        # Each WAL shard repairs its torn tail here, before its writer replays it.
        self.wals = [WriteAheadLog(settings.wal_shard_dir(i), settings.wal_segment_bytes, settings.wal_fsync)
                     for i in range(settings.writers)]
        self._writer_positions = [0] * settings.writers
        self._writer_stats: dict[int, dict[str, Any]] = {}
        self.writers = WriterPool(settings)
        if not self.writers.wait_ready(60):
            self.writers.stop(5)
            raise RuntimeError("lake writer processes did not start")
        self._capacity = WriterCapacity()
        self.quarantine = Quarantine(settings.quarantine_dir)
        self.ingest = Ingest(self.wals, self.metrics, self.backlog_limit, self.backlog_bytes)
        routes: dict[str, GetRoute] = {"/healthz": self._healthz, "/metrics": self._prometheus}
        routes.update(extra_routes or {})
        self.grpc = GrpcReceiver(settings.host, settings.grpc_port, self.ingest, settings.max_request_bytes,
                                 settings.auth_token)
        self.http = HttpReceiver(settings.host, settings.http_port, self.ingest, settings.max_request_bytes,
                                 settings.auth_token, routes, request_timeout_s=settings.http_request_timeout_s,
                                 workers=settings.http_workers, max_connections=settings.http_max_connections)
        self._closing = threading.Event()
        self._stats_thread = threading.Thread(target=self._drain_stats, name="writer-stats", daemon=True)

    def start(self) -> None:
        self._stats_thread.start()
        self.grpc.start()
        self.http.start()
        info = {"pid": os.getpid(), "host": self.settings.host, "grpc_port": self.grpc.port,
                "http_port": self.http.port}
        tmp = self.settings.data_dir / (READY_FILE + ".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(self.settings.data_dir / READY_FILE)
        logger.info("spanlake collector listening: OTLP/gRPC %s:%d, OTLP/HTTP %s:%d, data in %s",
                    self.settings.host, self.grpc.port, self.settings.host, self.http.port, self.settings.data_dir)

    def _drain_stats(self) -> None:
        while not self._closing.is_set():
            for stats in self.writers.poll_stats():
                self._take_stats(stats)
            time.sleep(0.1)
        for stats in self.writers.poll_stats():
            self._take_stats(stats)

    def _take_stats(self, stats: dict[str, Any]) -> None:
        shard = int(stats.get("shard", 0))
        self._writer_stats.setdefault(shard, {}).update(stats)
        if shard >= 0 and "position" in stats:
            self._capacity.observe(shard, float(stats.get("busy_s", 0.0)), int(stats.get("consumed_bytes", 0)))
            self._writer_positions[shard] = int(stats["position"])

    def backlog_bytes(self) -> int:
        """WAL bytes acknowledged but not yet committed to the lake, over all shards."""
        total = 0
        for shard, position in enumerate(self._writer_positions):
            wal_dir = self.settings.wal_shard_dir(shard)
            seg, off = split_position(position)
            for s in list_segments(wal_dir):
                if s < seg:
                    continue
                try:
                    size = segment_path(wal_dir, s).stat().st_size
                except FileNotFoundError:
                    continue
                total += max(size - (off if s == seg else 0), 0)
        return total

    def backlog_limit(self) -> int:
        """Backlog bytes the writers can commit within max_lag_s at their measured capacity (bounded)."""
        by_lag = int(self._capacity.bytes_per_s() * self.settings.max_lag_s)
        return min(self.settings.max_backlog_bytes, max(MIN_BACKLOG_BYTES, by_lag))

    def _writer_total(self, key: str) -> float:
        return sum(float(st.get(key, 0)) for shard, st in self._writer_stats.items() if shard >= 0)

    def _healthz(self) -> tuple[int, str, bytes]:
        alive = self.writers.alive()
        body = json.dumps({"status": "ok" if alive else "writer down", "writer_alive": alive}).encode()
        return (200 if alive else 503), "application/json", body

    def _prometheus(self) -> tuple[int, str, bytes]:
        m, ws = self.metrics, self._writer_stats.get(-1, {})
        m.set("spanlake_queue_bytes", self.backlog_bytes())
        for table in schema.TABLES:
            m.set("spanlake_written_total", self._writer_total(f"written_{table}"), table=table)
        m.set("spanlake_duplicates_total", self._writer_total("duplicates"))
        m.set("spanlake_genai_duplicates_total", self._writer_total("genai_duplicates"))
        m.set("spanlake_genai_unpriced_total", self._writer_total("genai_unpriced"))
        m.set("spanlake_redacted_values_total", self._writer_total("redacted_values"))
        m.set("spanlake_flush_total", self._writer_total("flushes"))
        m.set("spanlake_flush_seconds_sum", self._writer_total("flush_seconds"))
        m.set("spanlake_flush_seconds_last", max((float(st.get("last_flush_s", 0)) for st in
                                                  self._writer_stats.values()), default=0.0))
        # Counted from the quarantine itself, so the figure survives restarts (entries are kept when retried).
        for signal in ("traces", "logs", "metrics"):
            m.set("spanlake_quarantined_records_total", 0, signal=signal)
        for signal, count in self.quarantine.counts().items():
            m.set("spanlake_quarantined_records_total", count, signal=signal)
        if "lake_bytes" in ws:
            m.set("spanlake_lake_bytes", ws["lake_bytes"])
            m.set("spanlake_lake_files", ws["lake_files"])
        return 200, "text/plain; version=0.0.4", m.render().encode()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop taking requests, let the writer commit everything acknowledged, then exit."""
        self.http.stop()
        self.grpc.stop()
        self.writers.stop(timeout)
        self._closing.set()
        self._stats_thread.join(5)
        for wal in self.wals:
            wal.close()
        (self.settings.data_dir / READY_FILE).unlink(missing_ok=True)
        os.close(self._lock_fd)


def wait_forever(collector: Collector, stop_event: threading.Event) -> None:
    """Block until asked to stop; a writer process that dies is restarted (it resumes from the WAL)."""
    while not stop_event.wait(1.0):
        if collector.writers.restart_dead():
            collector.metrics.set("spanlake_writer_restarts_total", collector.writers.restarts)


def read_ready_file(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / READY_FILE
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
