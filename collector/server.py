"""Wires a collector: WAL → ingest → gRPC + HTTP receivers, and the lake-writer process.

Start order matters for durability: the WAL repairs a torn tail before the writer replays it.
Stop order drains: receivers stop taking requests, then the writer commits what the WAL holds.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spanlake.collector.ingest import Ingest
from spanlake.collector.receivers.otlp_grpc import GrpcReceiver
from spanlake.collector.receivers.otlp_http import HttpReceiver
from spanlake.collector.self_metrics import SelfMetrics
from spanlake.collector.settings import Settings
from spanlake.collector.storage.lake_writer import ensure_tables
from spanlake.collector.wal import WriteAheadLog, list_segments, segment_path, split_position
from spanlake.collector.writer_process import start_writer

logger = logging.getLogger(__name__)

READY_FILE = "collector.json"
GetRoute = Callable[[], tuple[int, str, bytes]]


class Collector:
    """One collector: receivers on both protocols, one WAL, one writer process."""

    def __init__(self, settings: Settings, extra_routes: dict[str, GetRoute] | None = None) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        ensure_tables(settings.lake_dir)
        self.metrics = SelfMetrics()
        self.wal = WriteAheadLog(settings.wal_dir, settings.wal_segment_bytes, settings.wal_fsync)
        self._writer_position = 0
        self._writer_stats: dict[str, Any] = {}
        self.proc, self._stats_q, self._stop, ready = start_writer(settings)
        if not ready.wait(60):
            raise RuntimeError("lake writer process did not start")
        self.ingest = Ingest(self.wal, self.metrics, settings.max_backlog_bytes, self.backlog_bytes)
        routes: dict[str, GetRoute] = {"/healthz": self._healthz, "/metrics": self._prometheus}
        routes.update(extra_routes or {})
        self.grpc = GrpcReceiver(settings.host, settings.grpc_port, self.ingest, settings.max_request_bytes,
                                 settings.auth_token)
        self.http = HttpReceiver(settings.host, settings.http_port, self.ingest, settings.max_request_bytes,
                                 settings.auth_token, routes)
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
        while not self._closing.is_set() or not self._stats_q.empty():
            try:
                stats = self._stats_q.get(timeout=0.2)
            except queue.Empty:
                continue
            except (EOFError, OSError):
                return
            self._writer_stats.update(stats)
            self._writer_position = int(self._writer_stats.get("position", self._writer_position))

    def backlog_bytes(self) -> int:
        """WAL bytes acknowledged but not yet committed to the lake."""
        seg, off = split_position(self._writer_position)
        total = 0
        for s in list_segments(self.settings.wal_dir):
            if s < seg:
                continue
            try:
                size = segment_path(self.settings.wal_dir, s).stat().st_size
            except FileNotFoundError:
                continue
            total += size - (off if s == seg else 0)
        return max(total, 0)

    def _healthz(self) -> tuple[int, str, bytes]:
        alive = self.proc.is_alive()
        body = json.dumps({"status": "ok" if alive else "writer down", "writer_alive": alive}).encode()
        return (200 if alive else 503), "application/json", body

    def _prometheus(self) -> tuple[int, str, bytes]:
        m, ws = self.metrics, self._writer_stats
        m.set("spanlake_queue_bytes", self.backlog_bytes())
        for table in ("spans", "logs", "metric_points"):
            m.set("spanlake_written_total", ws.get(f"written_{table}", 0), table=table)
        m.set("spanlake_duplicates_total", ws.get("duplicates", 0))
        m.set("spanlake_flush_total", ws.get("flushes", 0))
        m.set("spanlake_flush_seconds_sum", ws.get("flush_seconds", 0.0))
        m.set("spanlake_flush_seconds_last", ws.get("last_flush_s", 0.0))
        if "lake_bytes" in ws:
            m.set("spanlake_lake_bytes", ws["lake_bytes"])
            m.set("spanlake_lake_files", ws["lake_files"])
        return 200, "text/plain; version=0.0.4", m.render().encode()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop taking requests, let the writer commit everything acknowledged, then exit."""
        self.http.stop()
        self.grpc.stop()
        self._stop.set()
        self.proc.join(timeout)
        if self.proc.is_alive():
            logger.error("lake writer did not finish in %.0fs; the WAL keeps the rest for the next start", timeout)
            self.proc.terminate()
        self._closing.set()
        self.wal.close()
        (self.settings.data_dir / READY_FILE).unlink(missing_ok=True)


def wait_forever(collector: Collector, stop_event: threading.Event) -> None:
    """Block until asked to stop, watching that the writer process stays alive."""
    while not stop_event.wait(1.0):
        if not collector.proc.is_alive():
            logger.error("lake writer process died (exit code %s); stopping", collector.proc.exitcode)
            break
    time.sleep(0)


def read_ready_file(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / READY_FILE
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
