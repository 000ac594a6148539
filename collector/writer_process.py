"""The lake-writer process: tails the write-ahead log, converts to Arrow, commits to Delta.

It runs in its own (spawned) process so that protobuf → Arrow conversion uses the second core
while the receivers keep answering. It reports progress to the collector through a queue.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import gc
import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from spanlake.collector.attributes import AttributeDecoder
from spanlake.collector.convert import LogBuilder, MetricBuilder, SpanBuilder
from spanlake.collector.genai_dedup import GenAIDedup
from spanlake.collector.normalize import GenAINormalizer
from spanlake.collector.otlp_proto import SIGNALS
from spanlake.collector.quarantine import Quarantine, payload_digest
from spanlake.collector.redaction import Redactor
from spanlake.collector.settings import Settings
from spanlake.collector.storage import schema
from spanlake.collector.storage.lake_writer import LakeMaintainer, LakeWriter, lake_size
from spanlake.collector.wal import Record, WalReader, delete_segments_before, try_lock

logger = logging.getLogger(__name__)

SIGNAL_TABLE = {"traces": schema.SPANS, "logs": schema.LOGS, "metrics": schema.METRIC_POINTS}
DEDUP_SEED_WINDOW_S = 15 * 60
LAKE_SIZE_INTERVAL_S = 30.0
READ_CHUNK_BYTES = 4 * 1024 * 1024  # small enough that a due flush is never delayed long
SHARD_LOCK_FILE = "writer.lock"
PARENT_POLL_S = 0.2
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


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
    """Reads WAL records after the lake's committed positions and flushes them in batches.

    Errors are handled per record: a record that fails to parse or convert is retried on its own,
    and if it still fails it is set aside in the quarantine and the shard commits past it, so one
    bad record never blocks the records after it. Lake (I/O) errors are not the record's fault and
    still end the process (its restart resumes from the committed position)."""

    def __init__(self, settings: Settings, stats: Any, shard: int = 0) -> None:
        self.settings = settings
        self.stats = stats
        self.shard = shard
        self.wal_dir = settings.wal_shard_dir(shard)
        self.lake = LakeWriter(settings.lake_dir)
        self.positions = {t: self.lake.committed_position(t, shard) for t in schema.TABLES}
        self.reader = WalReader(self.wal_dir, min(self.positions.values()))
        # Position just after the last record converted: what a flush may commit. (The reader
        # itself may be ahead, holding records of its current chunk not yet converted.)
        self.consumed = min(self.positions.values())
        self.decoder = decoder = AttributeDecoder(
            settings.max_attribute_bytes, settings.max_anyvalue_depth,
            Redactor(settings.redact_patterns) if settings.redact else None, settings.max_attribute_key_bytes)
        # prices, content rows; shared by the span and log builders
        self.genai = GenAINormalizer(max_call_cost_usd=settings.max_call_cost_usd)
        self.genai_dedup = GenAIDedup()
        self.builders: dict[str, Any] = {
            schema.SPANS: SpanBuilder(decoder, int(settings.clock_skew_s * 1e9), self.genai),
            schema.LOGS: LogBuilder(decoder, self.genai),
            schema.METRIC_POINTS: MetricBuilder(decoder),
        }
        self.quarantine = Quarantine(settings.quarantine_dir)
        # Records of this shard already set aside (end position → payload digest): skipped on re-read.
        self.quarantined = self.quarantine.positions(shard)
        self.pending: list[Record] = []  # records in the builders now, for a record-by-record retry
        self.recent = RecentKeys(settings.dedup_window_spans)
        self._seed_recent()
        self.pending_since: float | None = None
        self.counters = {"duplicates": 0, "flushes": 0, "flush_seconds": 0.0, "last_flush_s": 0.0,
                         "busy_s": 0.0, "consumed_bytes": 0, "quarantined": 0,
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
        started = time.perf_counter()
        for rec in self.reader.read_available(max_bytes=READ_CHUNK_BYTES):
            read_any = True
            self.counters["consumed_bytes"] += len(rec.payload)
            table = SIGNAL_TABLE[rec.signal]
            # else: committed before a restart, or set aside already
            if rec.end_position > self.positions[table] and not self._already_quarantined(rec):
                self._add(rec)
            self.consumed = rec.end_position
            if self.pending_since is None:
                self.pending_since = time.monotonic()
            if self.pending_rows() >= self.settings.flush_max_rows or self._flush_due():
                self.flush()
        if self._flush_due():
            self.flush()
        if read_any:  # busy time: what the collector's backpressure measures capacity by
            self.counters["busy_s"] += time.perf_counter() - started
        return read_any

    def _already_quarantined(self, rec: Record) -> bool:
        digest = self.quarantined.get(rec.end_position)
        return digest is not None and digest == payload_digest(rec.payload)

    def _add(self, rec: Record) -> None:
        """Parse and convert one record into the builders; a failure sets it aside and rebuilds the rest."""
        try:
            self._convert(rec)
        except Exception as exc:  # the record's fault (parse or conversion): never the shard's
            self._set_aside(rec, exc)
            self._rebuild()
            return
        self.pending.append(rec)

    def _convert(self, rec: Record) -> None:
        request = SIGNALS[rec.signal].request.FromString(rec.payload)
        self.builders[SIGNAL_TABLE[rec.signal]].add_request(request, rec.received_ns)

    def _reset_builders(self) -> None:
        for builder in self.builders.values():
            builder._reset()
        self.genai.content.pending.clear()  # content rows come only from records since the last flush

    def _rebuild(self) -> None:
        """Start the builders over from the pending records (a failed record may have left half of itself)."""
        records, self.pending = self.pending, []
        self._reset_builders()
        for rec in records:
            try:
                self._convert(rec)
            except Exception as exc:  # converted before; fails now only with another record gone
                self._set_aside(rec, exc)
                continue
            self.pending.append(rec)

    def _set_aside(self, rec: Record, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"
        self.quarantine.put(self.shard, rec.end_position, rec.signal, rec.received_ns, rec.payload, error)
        self.quarantined[rec.end_position] = payload_digest(rec.payload)
        self.counters["quarantined"] += 1
        logger.error("writer: WAL shard %d record ending at %d (%s, %d bytes) cannot be converted: %s; "
                     "set aside in the quarantine (spanlake quarantine show %d-%d)", self.shard,
                     rec.end_position, rec.signal, len(rec.payload), error, self.shard, rec.end_position)

    def _flush_due(self) -> bool:
        return self.pending_since is not None and (
            time.monotonic() - self.pending_since >= self.settings.flush_interval_s)

    def _take_all(self) -> tuple[dict[str, pa.Table], list[tuple[bytes, bytes]]]:
        """Every builder's rows as tables (span_content last: taking it remembers its keys), and the span ids."""
        ids = list(self.builders[schema.SPANS].ids)
        tables = {table: builder.take() for table, builder in self.builders.items() if len(builder)}
        if len(self.genai.content):
            tables[schema.SPAN_CONTENT] = self.genai.content.take()
        return tables, ids

    def _take_record_by_record(self) -> tuple[dict[str, pa.Table], list[tuple[bytes, bytes]]]:
        """The batch failed as a whole: convert each pending record alone, set aside those that fail."""
        records, self.pending = self.pending, []
        logger.warning("writer: converting a batch of %d WAL records failed; converting them one by one",
                       len(records))
        parts: dict[str, list[pa.Table]] = {}
        ids: list[tuple[bytes, bytes]] = []
        for rec in records:
            self._reset_builders()
            try:
                self._convert(rec)
                tables, rec_ids = self._take_all()
            except Exception as exc:  # this record is the bad one (or one of them)
                self._set_aside(rec, exc)
                continue
            for table, data in tables.items():
                parts.setdefault(table, []).append(data)
            ids.extend(rec_ids)
        self._reset_builders()
        return {t: pa.concat_tables(p) for t, p in parts.items()}, ids

    def flush(self) -> None:
        """Commit every table's pending rows, each with the WAL position read so far."""
        position = self.consumed
        started = time.perf_counter()
        try:
            tables, ids = self._take_all()
        except Exception:  # conversion of the batch failed: find the record(s) at fault
            tables, ids = self._take_record_by_record()
        self.pending = []
        for table in (schema.SPANS, schema.LOGS, schema.METRIC_POINTS):
            data = tables.get(table)
            if data is None or not data.num_rows:
                continue
            if table == schema.SPANS:
                keep = [not self.recent.seen_or_add(k) for k in ids]
                if not all(keep):
                    data = data.filter(pa.array(keep))
                data = self._mark_genai_duplicates(data)
                self.counters["duplicates"] += len(keep) - data.num_rows
            self.lake.append(table, data, position, self.shard)
            self.positions[table] = position
            self.counters[f"written_{table}"] += data.num_rows
        self._flush_genai(tables.get(schema.SPAN_CONTENT), position)
        elapsed = time.perf_counter() - started
        self.counters["flushes"] += 1
        self.counters["flush_seconds"] += elapsed
        self.counters["last_flush_s"] = elapsed
        self.pending_since = None
        # Tables with nothing pending are caught up to here too (records set aside are in the
        # quarantine, which the writer consults on a re-read); older segments can go.
        delete_segments_before(self.wal_dir, position)
        # The builders' garbage is gone now: collect the young generations here, not mid-batch.
        gc.collect(1)
        self.report(position)

    def _mark_genai_duplicates(self, data: pa.Table) -> pa.Table:
        try:
            return self.genai_dedup.mark(data)
        except Exception:  # marking is an annotation: store the calls unmarked rather than not at all
            logger.exception("writer: marking duplicate LLM calls failed; stored unmarked")
            return data

    def _flush_genai(self, data: pa.Table | None, position: int) -> None:
        """Commit the span_content rows taken and publish the normaliser's counters."""
        if data is not None and data.num_rows:
            self.lake.append(schema.SPAN_CONTENT, data, position, self.shard)
            self.positions[schema.SPAN_CONTENT] = position
            self.counters[f"written_{schema.SPAN_CONTENT}"] += data.num_rows
        self.counters.update(self.genai.counters(), genai_duplicates=self.genai_dedup.marked,
                             redacted_values=self.decoder.redacted)

    def report(self, position: int | None = None) -> None:
        try:
            self.stats.put_nowait({"shard": self.shard,
                                   "position": position if position is not None else self.consumed,
                                   **self.counters})
        except queue.Full:
            pass


def _report_lake_size(settings: Settings, stats: Any) -> None:
    size, files = lake_size(settings.lake_dir)
    try:
        stats.put_nowait({"shard": -1, "lake_bytes": size, "lake_files": files})
    except queue.Full:
        pass


def _maintenance(settings: Settings, stop: Any, stats: Any) -> None:
    """Compaction / vacuum / retention on a timer, and the lake's size for /metrics, in a thread of
    writer 0's process."""
    maintainer = LakeMaintainer(settings.lake_dir, settings.vacuum_grace_s, settings.retention_days)
    next_run = time.monotonic() + settings.compact_interval_s
    next_size = time.monotonic()
    while not stop.value:
        time.sleep(1.0)
        try:
            if time.monotonic() >= next_size:
                _report_lake_size(settings, stats)
                next_size = time.monotonic() + LAKE_SIZE_INTERVAL_S
            if settings.compact_interval_s <= 0 or time.monotonic() < next_run:
                continue
            done = maintainer.run(dt.datetime.now(dt.timezone.utc).date())
            logger.info("maintenance: %s", done)
            _report_lake_size(settings, stats)
        except Exception:  # thread boundary: log, try again next round
            logger.exception("maintenance round failed")
        next_run = time.monotonic() + settings.compact_interval_s


def _parent_gone(parent_pid: int) -> bool:
    return os.getppid() != parent_pid


def _die_with(parent_pid: int) -> None:
    """End this writer when its collector ends, however it ends (SIGKILL, OOM killer): the kernel's
    parent-death signal where there is one, and a watcher thread of ``getppid()`` as well (the signal
    is tied to the thread that spawned us, and is missing off Linux). Nothing is lost: what is not
    committed stays in the WAL for the next owner of the shard."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if _parent_gone(parent_pid):  # it died before the signal was armed
        os._exit(3)

    def watch() -> None:
        while not _parent_gone(parent_pid):
            time.sleep(PARENT_POLL_S)
        logger.warning("collector (pid %d) is gone: exiting; the WAL keeps what is not committed", parent_pid)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def hold_shard_lock(settings: Settings, shard: int, parent_pid: int | None = None) -> int:
    """Take the exclusive lock of a WAL shard, waiting while a previous owner (say, a writer whose
    collector was just killed) still runs. flock is released by the kernel when the holder dies, so
    a shard has exactly one reader at any time. Returns the descriptor, which must stay open."""
    shard_dir = settings.wal_shard_dir(shard)
    shard_dir.mkdir(parents=True, exist_ok=True)
    tries = 0
    while (fd := try_lock(shard_dir / SHARD_LOCK_FILE)) is None:
        if parent_pid is not None and _parent_gone(parent_pid):
            os._exit(3)
        if tries % 50 == 0:
            logger.warning("WAL shard %d is held by another writer (pid %s); waiting for it to exit",
                           shard, _lock_holder(shard_dir))
        time.sleep(0.1)
        tries += 1
    if tries:
        logger.info("took WAL shard %d after waiting %.1fs for its previous writer", shard, tries / 10)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())  # for the log line of a writer that waits on us
    return fd


def _lock_holder(shard_dir: Path) -> str:
    try:
        return (shard_dir / SHARD_LOCK_FILE).read_text().strip() or "?"
    except OSError:
        return "?"


def writer_main(settings: Settings, shard: int, stats: Any, stop: Any, ready: Any, parent_pid: int) -> None:
    """Entry point of a spawned writer process; drains its WAL shard before exiting once ``stop`` is set.

    ``stop`` and ``ready`` are lock-free shared bytes, not multiprocessing Events: a process that dies
    while waiting on an Event leaves it unable to be set again, which hung the collector's shutdown."""
    # A terminal's Ctrl-C reaches the whole process group; the collector decides when writers stop
    # (after the receivers), through ``stop``.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=settings.log_level, format=f"%(asctime)s %(levelname)s writer-{shard} %(message)s")
    _die_with(parent_pid)
    hold_shard_lock(settings, shard, parent_pid)  # the descriptor stays open, so held, until this process ends
    loop = LakeWriterLoop(settings, stats, shard)
    if shard == 0:  # one maintainer per lake is enough
        threading.Thread(target=_maintenance, args=(settings, stop, stats), daemon=True).start()
    # Conversion allocates millions of short-lived objects per flush; automatic collections
    # mid-batch cost more than the conversion itself. Collect after each flush instead.
    gc.freeze()
    gc.set_threshold(200_000, 50, 50)
    ready.value = 1
    last_report = 0.0
    while True:
        stopping = bool(stop.value)
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


@dataclass
class _Writer:
    shard: int
    proc: Any
    stats: Any
    ready: Any


class WriterPool:
    """The lake-writer processes, one per WAL shard: spawn, watch, restart, stop.

    Processes are spawned, not forked (deltalake's runtime does not survive fork). Each has its own
    stats queue, so a writer that dies mid-message cannot jam the others' reports."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ctx = mp.get_context("spawn")
        self._stop = self._ctx.Value("b", 0, lock=False)
        self.restarts = 0
        self.writers = [self._spawn(shard) for shard in range(settings.writers)]

    def _spawn(self, shard: int) -> _Writer:
        stats = self._ctx.Queue(maxsize=1000)
        ready = self._ctx.Value("b", 0, lock=False)
        proc = self._ctx.Process(target=writer_main,
                                 args=(self.settings, shard, stats, self._stop, ready, os.getpid()),
                                 name=f"spanlake-writer-{shard}", daemon=True)
        proc.start()
        return _Writer(shard, proc, stats, ready)

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(w.ready.value for w in self.writers):
                return True
            if any(not w.proc.is_alive() for w in self.writers):
                return False
            time.sleep(0.05)
        return False

    def alive(self) -> bool:
        return all(w.proc.is_alive() for w in self.writers)

    def restart_dead(self) -> list[int]:
        """Respawn writers that died; each resumes from its shard's committed WAL position."""
        if self._stop.value:
            return []
        restarted = []
        for i, writer in enumerate(self.writers):
            if not writer.proc.is_alive():
                logger.error("%s died (exit code %s); restarting it", writer.proc.name, writer.proc.exitcode)
                self.writers[i] = self._spawn(writer.shard)
                self.restarts += 1
                restarted.append(writer.shard)
        return restarted

    def poll_stats(self) -> list[dict[str, Any]]:
        """Every report waiting in the writers' queues, without blocking."""
        reports = []
        for writer in self.writers:
            while True:
                try:
                    reports.append(writer.stats.get_nowait())
                except (queue.Empty, EOFError, OSError, ValueError):
                    break
        return reports

    def stop(self, timeout: float) -> None:
        """Ask every writer to commit what its WAL shard holds and exit; terminate stragglers."""
        self._stop.value = 1
        deadline = time.monotonic() + timeout
        for writer in self.writers:
            writer.proc.join(max(0.0, deadline - time.monotonic()))
            if writer.proc.is_alive():
                logger.error("%s did not finish in %.0fs; the WAL keeps the rest for the next start",
                             writer.proc.name, timeout)
                writer.proc.terminate()
