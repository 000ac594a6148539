"""Erasure benchmark (not a test): the cost of `spanlake erase` on a lake of N spans, and what limiting
Delta file statistics to time columns does to appends (commit time, bytes of Delta log per commit).

    python bench/erase.py --spans 200000 --users 1000
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable
from spanlake.collector.storage import erasure, schema
from spanlake.collector.storage.lake_writer import TABLE_CONFIG, LakeWriter, table_path

PROMPT = "Summarise this support ticket for the on-call engineer, keeping names and numbers. " * 25  # ~2 KB


def _batch(rng: random.Random, n: int, users: int, start: int) -> tuple[pa.Table, pa.Table]:
    """n spans (one per trace) of random users, and their span_content rows with a 2 KB prompt."""
    now = dt.datetime.now(dt.timezone.utc)
    day = now.date()
    spans, content = [], []
    for i in range(n):
        trace, span = rng.randbytes(16).hex(), rng.randbytes(8).hex()
        user = f"user-{rng.randrange(users)}"
        ns = time.time_ns() + i
        spans.append({"trace_id": trace, "span_id": span, "name": "chat gpt-4o-mini", "kind": "CLIENT",
                      "start_time": now, "end_time": now, "start_time_unix_nano": ns, "end_time_unix_nano": ns,
                      "status_code": "UNSET", "service_name": "bench", "attributes": [("user.id", user)],
                      "resource_attributes": [], "received_time": now, "user_id": user, "operation": "chat",
                      "request_model": "gpt-4o-mini", "input_tokens": 100, schema.PARTITION_COLUMN: day})
        content.append({"trace_id": trace, "span_id": span, "time": now, "service_name": "bench",
                        "input_messages": f"[{{\"role\":\"user\",\"parts\":[{{\"type\":\"text\",\"content\":"
                                          f"\"{PROMPT} #{start + i}\"}}]}}]", "source": "span",
                        schema.PARTITION_COLUMN: day})
    return (pa.Table.from_pylist(spans, schema=schema.arrow_schema(schema.SPANS)),
            pa.Table.from_pylist(content, schema=schema.arrow_schema(schema.SPAN_CONTENT)))


def _log_bytes(lake: Path, table: str) -> int:
    return sum(p.stat().st_size for p in (table_path(lake, table) / "_delta_log").glob("*.json"))


def bench_append_stats(root: Path, commits: int, rows: int) -> None:
    """Append the same batches to a lake with statistics on every column and one with time columns only."""
    rng = random.Random(1)
    batches = [_batch(rng, rows, 100, i * rows) for i in range(commits)]
    for label in ("all columns (before)", "time columns only (now)"):
        lake = root / label.split()[0]
        writer = LakeWriter(lake)
        if label.startswith("all"):
            for table in (schema.SPANS, schema.SPAN_CONTENT):
                DeltaTable(str(table_path(lake, table))).alter.set_table_properties(
                    {**TABLE_CONFIG, "delta.dataSkippingStatsColumns": ",".join(schema.column_names(table))})
        base = {t: _log_bytes(lake, t) for t in (schema.SPANS, schema.SPAN_CONTENT)}
        seconds = []
        for i, (spans, content) in enumerate(batches, 1):
            started = time.perf_counter()
            writer.append(schema.SPANS, spans, i)
            writer.append(schema.SPAN_CONTENT, content, i)
            seconds.append(time.perf_counter() - started)
        per_commit = {t: (_log_bytes(lake, t) - base[t]) / commits for t in base}
        print(f"stats on {label:<24}: append spans+content of {rows} rows: median {statistics.median(seconds)*1000:.1f} ms;"
              f" Delta log per commit: spans {per_commit[schema.SPANS]:.0f} B, "
              f"span_content {per_commit[schema.SPAN_CONTENT]:.0f} B")


def bench_erase(root: Path, spans: int, users: int, per_commit: int) -> None:
    lake = root / "erase"
    writer = LakeWriter(lake)
    rng = random.Random(2)
    for i in range(spans // per_commit):
        batch, content = _batch(rng, per_commit, users, i * per_commit)
        writer.append(schema.SPANS, batch, i + 1)
        writer.append(schema.SPAN_CONTENT, content, i + 1)
    files = len(DeltaTable(str(table_path(lake, schema.SPANS))).file_uris())
    request = erasure.request_from(None, ["user-7"], None)
    started = time.perf_counter()
    plan = erasure.plan_erasure(lake, request)
    assert plan.counts[schema.SPANS] > 0
    planned = time.perf_counter() - started
    started = time.perf_counter()
    result = erasure.erase(lake, request, vacuum=True)
    took = time.perf_counter() - started
    print(f"erase one of {users} users from {spans} spans + content ({files} files per table): dry run "
          f"{planned:.2f} s; erase + vacuum-now {took:.2f} s; deleted {result.deleted}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--per-commit", type=int, default=20_000)
    parser.add_argument("--commits", type=int, default=20, help="appends per statistics setting")
    parser.add_argument("--rows", type=int, default=2000, help="rows per append in the statistics comparison")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="spanlake-bench-erase-"))
    try:
        bench_append_stats(root, args.commits, args.rows)
        bench_erase(root, args.spans, args.users, args.per_commit)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
