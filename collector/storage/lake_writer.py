"""Writes the lake: Delta Lake tables of Parquet files, partitioned by UTC day.

Every append is one atomic Delta commit that also records, as a Delta app transaction, how far
in the write-ahead log it reaches; a restart resumes exactly there. Compaction rewrites small
files (readers of older snapshots keep working), vacuum deletes replaced files only after a grace
period longer than any reader (and files abandoned by failed write attempts once older than any
write), and retention drops whole old partitions.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from spanlake.collector.storage import schema

logger = logging.getLogger(__name__)

WAL_APP_ID = "spanlake-wal-{shard}"  # one Delta app transaction per WAL shard
TARGET_FILE_BYTES = 128 * 1024 * 1024
# A commit per flush per writer means thousands of log entries a day: keep the log short (readers
# pin their file list when they open a snapshot, so they never need old log entries).
TABLE_CONFIG = {"delta.logRetentionDuration": "interval 2 hours", "delta.enableExpiredLogCleanup": "true",
                "delta.checkpointInterval": "100"}
COMMIT_BACKOFF_MAX_S = 2.0
ABANDONED_FILE_HOURS = 1  # an unreferenced file older than this is no write in progress (compactions included)
# Every rewrite of the lake's files (append, compaction, erasure) uses these, so files keep one layout.
WRITER_PROPS = WriterProperties(compression="ZSTD", compression_level=3, max_row_group_size=122_880)
T = TypeVar("T")


def retry_commit(what: str, commit: Callable[[], T], done: Callable[[], bool] = lambda: False,
                 max_attempts: int | None = None) -> T | None:
    """Run ``commit`` until it stops failing with a Delta commit conflict, backing off between tries.

    Another commit winning (compaction, retention, reprice, erase, or a writer of another replica) is
    expected; ``done`` says whether what ``commit`` does is already in the table (then None is returned).
    With ``max_attempts`` the last conflict is raised."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return commit()
        except CommitFailedError as exc:
            if done():
                return None
            if max_attempts is not None and attempt >= max_attempts:
                raise
            delay = min(COMMIT_BACKOFF_MAX_S, 0.05 * 2 ** min(attempt, 10))
            logger.warning("%s: commit conflict (attempt %d), retrying in %.2fs: %s", what, attempt, delay, exc)
            time.sleep(delay)


def table_path(lake_dir: Path, table: str) -> Path:
    return lake_dir / table


def table_config(table: str) -> dict[str, str]:
    """Delta table properties of a stored table: short log, and file statistics only on time columns.

    The Delta log keeps each file's min/max per column in its commits and checkpoints, which outlive
    the files: statistics on prompts, log bodies or ids would keep erased data in the log. Readers
    prune by partition and Parquet footers, so time columns are all the log needs."""
    return {**TABLE_CONFIG, "delta.dataSkippingStatsColumns": ",".join(schema.STATS_COLUMNS[table])}


def ensure_tables(lake_dir: Path, tables: tuple[str, ...] = schema.TABLES) -> None:
    """Create the tables (empty) if missing, so readers always find them; bring older tables' properties
    up to date (tables created before statistics were limited to time columns)."""
    for table in tables:
        path = table_path(lake_dir, table)
        config = table_config(table)
        if not DeltaTable.is_deltatable(str(path)):
            path.mkdir(parents=True, exist_ok=True)
            DeltaTable.create(str(path), schema=schema.arrow_schema(table), mode="ignore",
                              partition_by=schema.PARTITIONS.get(table, []), name=table, configuration=config)
            continue
        target = DeltaTable(str(path))

        def up_to_date() -> bool:
            target.update_incremental()
            return all(target.metadata().configuration.get(k) == v for k, v in config.items())

        if not up_to_date():
            retry_commit(f"{table} properties", lambda: target.alter.set_table_properties(config), up_to_date)


class LakeWriter:
    """The only writer of the lake's tables in a collector process."""

    def __init__(self, lake_dir: Path) -> None:
        self.lake_dir = lake_dir
        lake_dir.mkdir(parents=True, exist_ok=True)
        ensure_tables(lake_dir)
        self._tables = {t: DeltaTable(str(table_path(lake_dir, t))) for t in schema.TABLES}

    def committed_position(self, table: str, shard: int = 0) -> int:
        """The position in WAL shard ``shard`` that the table's appends reached (0 when none)."""
        self._tables[table].update_incremental()
        return self._tables[table].transaction_version(WAL_APP_ID.format(shard=shard)) or 0

    def append(self, table: str, data: pa.Table, wal_position: int, shard: int = 0) -> None:
        """Append rows (sorted by time) and the WAL shard's position in one commit."""
        if data.num_rows == 0:
            return
        data = data.sort_by([(schema.SORT_COLUMN[table], "ascending")])
        txn = Transaction(app_id=WAL_APP_ID.format(shard=shard), version=wal_position)
        props = CommitProperties(app_transactions=[txn], max_commit_retries=50)
        target = self._tables[table]

        def commit() -> None:
            target.update_incremental()
            write_deltalake(target, data, mode="append", partition_by=[schema.PARTITION_COLUMN],
                            schema_mode="merge", writer_properties=WRITER_PROPS, commit_properties=props)

        def already_committed() -> bool:
            # If this position is already in the table (our earlier attempt won), the rows are too.
            if self.committed_position(table, shard) < wal_position:
                return False
            logger.warning("%s: WAL shard %d position %d already committed; not appending again",
                           table, shard, wal_position)
            return True

        retry_commit(f"{table} append", commit, already_committed)

    def recent_span_keys(self, since_us: int) -> list[tuple[bytes, bytes]]:
        """(trace_id, span_id) of spans received since ``since_us``, to seed de-duplication on start."""
        dataset = self._tables[schema.SPANS].to_pyarrow_dataset()
        recv = pc.field("received_time") >= pa.scalar(since_us, type=schema.TS)
        day = pc.field(schema.PARTITION_COLUMN) >= pa.scalar(
            dt.date(1970, 1, 1) + dt.timedelta(days=since_us // 86_400_000_000 - 1), pa.date32())
        rows = dataset.to_table(columns=["trace_id", "span_id"], filter=recv & day)
        return [(bytes.fromhex(t), bytes.fromhex(s))
                for t, s in zip(rows.column("trace_id").to_pylist(), rows.column("span_id").to_pylist())]


class LakeMaintainer:
    """Compaction, vacuum and retention; runs beside the appender on its own table handles."""

    def __init__(self, lake_dir: Path, vacuum_grace_s: float, retention_days: int) -> None:
        self.lake_dir = lake_dir
        self.grace_hours = max(0, int(vacuum_grace_s // 3600))
        self.retention_days = retention_days

    def run(self, today: dt.date) -> dict[str, int]:
        """One maintenance round over every table; returns files removed per step."""
        done = {"compacted": 0, "vacuumed": 0, "expired_partitions": 0}
        for table in schema.TABLES:
            target = DeltaTable(str(table_path(self.lake_dir, table)))
            done["compacted"] += self._compact(target, today)
            if self.retention_days:
                done["expired_partitions"] += self._expire(target, today)
            done["vacuumed"] += len(target.vacuum(retention_hours=self.grace_hours, dry_run=False,
                                                  enforce_retention_duration=False))
            # Files a failed write attempt left (lost a commit race) are never referenced, so the
            # pass above never sees them; they may hold rows since erased. A full vacuum takes them,
            # but also any file still being written: only once older than any write can take.
            done["vacuumed"] += len(target.vacuum(retention_hours=max(self.grace_hours, ABANDONED_FILE_HOURS),
                                                  dry_run=False, enforce_retention_duration=False, full=True))
        return done

    def _compact(self, target: DeltaTable, today: dt.date) -> int:
        removed = 0
        for day in (today - dt.timedelta(days=1), today):
            def compact_day(day: dt.date = day) -> int:
                target.update_incremental()  # a concurrent append won: compact the new snapshot
                metrics = target.optimize.compact(
                    partition_filters=[(schema.PARTITION_COLUMN, "=", day.isoformat())],
                    target_size=TARGET_FILE_BYTES, writer_properties=WRITER_PROPS)
                return int(metrics.get("numFilesRemoved", 0))

            try:
                removed += retry_commit(f"compaction of {day}", compact_day, max_attempts=5) or 0
            except CommitFailedError:
                logger.info("compaction of %s gave way to appends five times; the next pass tries again", day)
        return removed

    def _expire(self, target: DeltaTable, today: dt.date) -> int:
        cutoff = today - dt.timedelta(days=self.retention_days)
        result = target.delete(f"{schema.PARTITION_COLUMN} < '{cutoff.isoformat()}'")
        return int(result.get("num_removed_files", 0))


def lake_size(lake_dir: Path) -> tuple[int, int]:
    """(bytes, files) of live data files across tables."""
    total = files = 0
    for table in schema.TABLES:
        try:
            # deltalake returns an arro3 table; pa.table() takes it through the Arrow C interface.
            actions = pa.table(DeltaTable(str(table_path(lake_dir, table))).get_add_actions(flatten=True))
        except TableNotFoundError:
            continue
        files += actions.num_rows
        total += int(pc.sum(actions.column("size_bytes")).as_py() or 0)
    return total, files
