"""The lake: snapshot reads stay exact during compaction; retention; the CLI over it."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
from spanlake.collector.storage import schema
from spanlake.collector.storage.lake_writer import LakeMaintainer, LakeWriter, lake_size
from spanlake.collector.storage.reader import open_snapshot


def _spans(n: int, day: dt.date, offset: int) -> pa.Table:
    base = int(dt.datetime.combine(day, dt.time(12), tzinfo=dt.timezone.utc).timestamp() * 1e9)
    rows = [{"trace_id": f"{offset + i:032x}", "span_id": f"{offset + i:016x}", "name": "s", "kind": "CLIENT",
             "start_time": (base + i) // 1000, "end_time": (base + i + 5000) // 1000,
             "start_time_unix_nano": base + i, "end_time_unix_nano": base + i + 5000, "duration_ms": 0.005,
             "status_code": "UNSET", "service_name": "lake-test", "attributes": [("k", "v")],
             "resource_attributes": [], "request_model": "gpt-4o-mini", "input_tokens": 10,
             schema.PARTITION_COLUMN: day} for i in range(n)]
    return pa.Table.from_pylist(rows, schema=schema.arrow_schema(schema.SPANS))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spanlake.ui.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_readers_never_see_wrong_counts_during_compaction(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    writer = LakeWriter(lake)
    today = dt.datetime.now(dt.timezone.utc).date()
    for i in range(40):
        writer.append(schema.SPANS, _spans(250, today, i * 250), wal_position=i + 1)
    _, files_before = lake_size(lake)
    counts: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read_loop() -> None:
        while not stop.is_set() and len(counts) < 2000:
            try:
                with open_snapshot(lake, threads=1) as snap:
                    counts.append(snap.con.execute("select count(*) from spans").fetchone()[0])
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion below
                errors.append(exc)

    reader = threading.Thread(target=read_loop)
    reader.start()
    done = LakeMaintainer(lake, vacuum_grace_s=3600, retention_days=0).run(today)
    stop.set()
    reader.join(60)
    _, files_after = lake_size(lake)
    assert not errors, errors[:3]
    assert counts and set(counts) == {10_000}
    assert done["compacted"] >= 40 and files_after < files_before
    with open_snapshot(lake) as snap:
        assert snap.con.execute("select count(distinct span_id) from spans").fetchone()[0] == 10_000


def test_retention_drops_old_partitions_only(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    writer = LakeWriter(lake)
    today = dt.date(2026, 11, 23)
    writer.append(schema.SPANS, _spans(10, today - dt.timedelta(days=10), 0), 1)
    writer.append(schema.SPANS, _spans(20, today, 1000), 2)
    LakeMaintainer(lake, vacuum_grace_s=0, retention_days=3).run(today)
    with open_snapshot(lake) as snap:
        assert snap.con.execute("select count(*), min(dt) from spans").fetchone() == (20, today)


def test_cli_sql_formats_status_and_compact(tmp_path: Path) -> None:
    data = tmp_path / "data"
    writer = LakeWriter(data / "lake")
    today = dt.datetime.now(dt.timezone.utc).date()
    for i in range(3):
        writer.append(schema.SPANS, _spans(5, today, i * 5), i + 1)
    done = _cli("sql", "--data-dir", str(data), "--format", "json",
                "select request_model, count(*) as n, sum(input_tokens) as tokens from spans group by 1")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"request_model": "gpt-4o-mini", "n": 15, "tokens": 150}]
    csv_out = _cli("sql", "--data-dir", str(data), "--format", "csv", "select count(*) as n from spans")
    assert csv_out.stdout.splitlines() == ["n", "15"]
    table = _cli("sql", "--data-dir", str(data), "select count(*) as n from spans")
    assert table.stdout.splitlines()[-1] == "(1 row)" and "15" in table.stdout
    bad = _cli("sql", "--data-dir", str(data), "select nope from spans")
    assert bad.returncode == 1 and "nope" in bad.stderr
    status = _cli("status", "--data-dir", str(data))
    assert status.returncode == 0 and "collector: not running" in status.stdout
    assert any(line.startswith("spans") and " 15 rows" in line for line in status.stdout.splitlines())
    compact = _cli("compact", "--data-dir", str(data))
    assert compact.returncode == 0 and "compacted away 3 files" in compact.stdout
