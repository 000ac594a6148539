"""The lake-writer process: tails the write-ahead log, converts to Arrow, commits to Delta.

It runs in its own (spawned) process so that protobuf → Arrow conversion uses the second core
while the receivers keep answering. It reports progress to the collector through a queue.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing as mp
import queue
import threading
import time
from collections import deque
from typing import Any

from spanlake.collector.attributes import AttributeDecoder
from spanlake.collector.convert import LogBuilder, MetricBuilder, SpanBuilder
from spanlake.collector.otlp_proto import SIGNALS
from spanlake.collector.settings import Settings
from spanlake.collector.storage import schema
from spanlake.collector.storage.lake_writer import LakeMaintainer, LakeWriter, lake_size
from spanlake.collector.wal import WalReader, delete_segments_before

logger = logging.getLogger(__name__)

SIGNAL_TABLE = {"traces": schema.SPANS, "logs": schema.LOGS, "metrics": schema.METRIC_POINTS}
DEDUP_SEED_WINDOW_S = 15 * 60


class RecentKeys:
    """A bounded memory of (trace_id, span_id) hashes: first write wins within the window."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._set: set[int] = set()
        self._order: deque[int] = deque()

    def seen_or_add(self, key: tuple[bytes, bytes]) -> bool:
        h = hash(key)
        if h in self._set:
            return True
        self._set.add(h)
        self._order.append(h)
        if len(self._order) > self._capacity:
            self._set.discard(self._order.popleft())
        return False


class LakeWriterLoop:
    """Reads WAL records after the lake's committed positions and flushes them in batches."""

    def __init__(self, settings: Settings, stats: Any) -> None:
        self.settings = settings
        self.stats = stats
        self.lake = LakeWriter(settings.lake_dir)
        self.positions = {t: self.lake.committed_position(t) for t in schema.TABLES}
        self.reader = WalReader(settings.wal_dir, min(self.positions.values()))
        decoder = AttributeDecoder(settings.max_attribute_bytes, settings.max_anyvalue_depth)
        self.builders: dict[str, Any] = {
            schema.SPANS: SpanBuilder(decoder, int(settings.clock_skew_s * 1e9)),
            schema.LOGS: LogBuilder(decoder),
            schema.METRIC_POINTS: MetricBuilder(decoder),
        }
        self.recent = RecentKeys(settings.dedup_window_spans)
        self._seed_recent()
        self.pending_since: float | None = None
        self.counters = {"duplicates": 0, "flushes": 0, "flush_seconds": 0.0, "last_flush_s": 0.0,
                         **{f"written_{t}": 0 for t in schema.TABLES}}

    def _seed_recent(self) -> None:
        since_us = (time.time_ns() // 1000) - DEDUP_SEED_WINDOW_S * 1_000_000
        try:
            for key in self.lake.recent_span_keys(since_us):
                self.recent.seen_or_add(key)
        except Exception:  # a fresh or unreadable lake only weakens de-duplication
            logger.exception("writer: could not seed de-duplication from the lake")

    def pending_rows(self) -> int:
        return sum(len(b) for b in self.builders.values())

    def step(self) -> bool:
        """Consume what the WAL holds now, flush if due; returns whether anything was read."""
        read_any = False
        for rec in self.reader.read_available():
            read_any = True
            table = SIGNAL_TABLE[rec.signal]
            if rec.end_position <= self.positions[table]:
                continue  # already committed before a restart
            request = SIGNALS[rec.signal].request.FromString(rec.payload)
            self.builders[table].add_request(request, rec.received_ns)
            if self.pending_since is None:
                self.pending_since = time.monotonic()
            if self.pending_rows() >= self.settings.flush_max_rows:
                self.flush()
        if self.pending_since is not None and (
                time.monotonic() - self.pending_since >= self.settings.flush_interval_s):
            self.flush()
        return read_any

    def flush(self) -> None:
        """Commit every table's pending rows, each with the WAL position read so far."""
        position = self.reader.position
        started = time.perf_counter()
        for table, builder in self.builders.items():
            if not len(builder):
                continue
            if table == schema.SPANS:
                keep = [not self.recent.seen_or_add(k) for k in builder.ids]
                data = builder.take(keep)
                self.counters["duplicates"] += len(keep) - data.num_rows
            else:
                data = builder.take()
            self.lake.append(table, data, position)
            self.positions[table] = position
            self.counters[f"written_{table}"] += data.num_rows
        elapsed = time.perf_counter() - started
        self.counters["flushes"] += 1
        self.counters["flush_seconds"] += elapsed
        self.counters["last_flush_s"] = elapsed
        self.pending_since = None
        # Tables with nothing pending are caught up to here too; older segments can go.
        delete_segments_before(self.settings.wal_dir, position)
        self.report(position)

    def report(self, position: int | None = None) -> None:
        try:
            self.stats.put_nowait({"position": position if position is not None else self.reader.position,
                                   **self.counters})
        except queue.Full:
            pass


def _maintenance(settings: Settings, stop: Any, stats: Any) -> None:
    """Compaction / vacuum / retention on a timer, in a thread of the writer process."""
    maintainer = LakeMaintainer(settings.lake_dir, settings.vacuum_grace_s, settings.retention_days)
    next_run = time.monotonic() + settings.compact_interval_s
    while not stop.wait(1.0):
        if settings.compact_interval_s <= 0 or time.monotonic() < next_run:
            continue
        try:
            done = maintainer.run(dt.datetime.now(dt.timezone.utc).date())
            logger.info("maintenance: %s", done)
            size, files = lake_size(settings.lake_dir)
            stats.put_nowait({"lake_bytes": size, "lake_files": files})
        except Exception:  # thread boundary: log, try again next round
            logger.exception("maintenance round failed")
        next_run = time.monotonic() + settings.compact_interval_s


def writer_main(settings: Settings, stats: Any, stop: Any, ready: Any) -> None:
    """Entry point of the spawned writer process; drains the WAL before exiting on ``stop``."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s writer %(message)s")
    loop = LakeWriterLoop(settings, stats)
    maint = threading.Thread(target=_maintenance, args=(settings, stop, stats), daemon=True)
    maint.start()
    ready.set()
    last_report = 0.0
    while True:
        stopping = stop.is_set()
        read_any = loop.step()
        if time.monotonic() - last_report > 0.5:
            loop.report()
            last_report = time.monotonic()
        if stopping and not read_any:
            if loop.pending_rows():
                loop.flush()
            loop.report()
            return
        if not read_any:
            time.sleep(0.02)


def start_writer(settings: Settings) -> tuple[Any, Any, Any, Any]:
    """Spawn the writer (deltalake's runtime does not survive fork); returns (process, stats, stop, ready)."""
    ctx = mp.get_context("spawn")
    stats = ctx.Queue(maxsize=1000)
    stop = ctx.Event()
    ready = ctx.Event()
    proc = ctx.Process(target=writer_main, args=(settings, stats, stop, ready), name="spanlake-writer", daemon=True)
    proc.start()
    return proc, stats, stop, ready
