"""Right to erasure: `spanlake erase` against a live collector removes a user's or a trace's rows from spans,
logs and span_content, then from the files on disk after vacuum; the erasure log keeps counts, not data.

Budget: about 40 s (one collector, a dozen CLI runs).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from harness import REPO, CollectorProcess, count_when, query
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from spanlake.collector.storage import schema
from spanlake.collector.storage.lake_writer import (
    ABANDONED_FILE_HOURS,
    TABLE_CONFIG,
    LakeMaintainer,
    LakeWriter,
)
from spanlake.instrumentation import semconv as sc

SPANLAKE = REPO / ".venv" / "bin" / "spanlake"
ERASED = (schema.SPANS, schema.LOGS, schema.SPAN_CONTENT)
RUN = uuid.uuid4().hex[:10]


@dataclass
class UserTraffic:
    """What was sent for one user: trace ids, and marker strings that appear only in that user's rows."""

    user: str
    traces: list[str] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)


def _send(collector: CollectorProcess, user: str, traces: int, untraced_log: bool = True) -> UserTraffic:
    """Per trace: an app span without user id, a chat span of ``user`` with prompt/completion content and a log
    record in its context; and a log record outside any trace carrying the user id. Real SDK exporters."""
    sent = UserTraffic(user)
    resource = Resource.create({"service.name": f"erase-app-{RUN}"})
    tracing = TracerProvider(resource=resource)
    tracing.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.http_url}/v1/traces")))
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{collector.http_url}/v1/logs")))
    logger = logging.getLogger(f"erase.{user}.{uuid.uuid4().hex[:6]}")
    logger.propagate = False
    logger.addHandler(LoggingHandler(logger_provider=logs))
    tracer = tracing.get_tracer("erase.test")
    for i in range(traces):
        prompt, answer, note = (f"{kind}-{user}-{i}-{uuid.uuid4().hex[:6]}" for kind in ("PROMPT", "ANSWER", "LOGBODY"))
        with tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER) as root:
            with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={
                    sc.USER_ID: user, sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai",
                    sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", sc.GEN_AI_USAGE_INPUT_TOKENS: 10,
                    sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
                    sc.GEN_AI_INPUT_MESSAGES: json.dumps([{"role": "user", "parts": [
                        {"type": "text", "content": f"please summarise {prompt}"}]}]),
                    sc.GEN_AI_OUTPUT_MESSAGES: json.dumps([{"role": "assistant", "finish_reason": "stop", "parts": [
                        {"type": "text", "content": f"summary {answer}"}]}])}):
                logger.warning("handled %s", note)
        sent.traces.append(format(root.get_span_context().trace_id, "032x"))
        sent.markers += [prompt, answer, note]
    if untraced_log:
        outside = f"UNTRACED-{user}-{uuid.uuid4().hex[:6]}"
        logger.warning("account note %s", outside, extra={sc.USER_ID: user})
        sent.markers.append(outside)
    tracing.shutdown()
    logs.shutdown()
    return sent


def _cli(collector: CollectorProcess, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SPANLAKE), *args, "--data-dir", str(collector.data_dir)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})}, cwd=collector.data_dir.parent)


def _counts(collector: CollectorProcess, traces: list[str]) -> dict[str, int]:
    ids = ", ".join(f"'{t}'" for t in traces)
    return {t: int(query(collector.data_dir, f"select count(*) from {t} where trace_id in ({ids})").column(0)[0].as_py())
            for t in ERASED}


def _untraced_logs(collector: CollectorProcess, user: str) -> int:
    sql = f"select count(*) from logs where trace_id is null and attributes['{sc.USER_ID}'] = '{user}'"
    return int(query(collector.data_dir, sql).column(0)[0].as_py())


def _data_files(collector: CollectorProcess) -> list[Path]:
    """Every Parquet data file on disk under the erased tables, referenced by the Delta log or not."""
    lake = collector.data_dir / "lake"
    return [f for t in ERASED for f in (lake / t).rglob("*.parquet") if "_delta_log" not in f.parts]


def _on_disk(collector: CollectorProcess, markers: list[str]) -> set[str]:
    """Markers found in any string of any file under the erased tables: every Parquet file read in full with
    pyarrow (every column, nested ones included), and the raw bytes of everything (Delta log included)."""
    found = set()
    for path in _data_files(collector):
        text = json.dumps(pq.read_table(path).to_pylist(), default=str)
        found |= {m for m in markers if m in text}
    for table in ERASED:
        for path in (collector.data_dir / "lake" / table).rglob("*"):
            if path.is_file():
                raw = path.read_bytes()
                found |= {m for m in markers if m.encode() in raw}
    return found


def _raw_bytes_hold(collector: CollectorProcess, text: str) -> bool:
    return any(text.encode() in path.read_bytes() for path in _data_files(collector))


def _abandoned_copy(collector: CollectorProcess, trace: str) -> Path:
    """A Parquet file in span_content's partition holding a copy of ``trace``'s rows that no commit references,
    dated a minute back, as delta-rs leaves behind when a rewrite's commit loses a race."""
    lake = collector.data_dir / "lake"
    rows = query(collector.data_dir, f"select * exclude ({schema.PARTITION_COLUMN}), {schema.PARTITION_COLUMN} "
                 f"from span_content where trace_id = '{trace}'")
    assert rows.num_rows == 1
    day = rows.column(schema.PARTITION_COLUMN)[0].as_py()
    path = lake / schema.SPAN_CONTENT / f"{schema.PARTITION_COLUMN}={day}" / f"part-00000-{uuid.uuid4()}-c000.zstd.parquet"
    pq.write_table(rows.drop([schema.PARTITION_COLUMN]), path, compression="zstd")
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


@pytest.fixture(scope="module")
def traffic(collector: CollectorProcess) -> Iterator[dict[str, UserTraffic]]:
    sent = {"u1": _send(collector, f"u1-{RUN}", 2), "u2": _send(collector, f"u2-{RUN}", 2),
            "u3": _send(collector, f"u3-{RUN}", 2), "anon": _send(collector, f"u4-{RUN}", 2, untraced_log=False),
            "u5": _send(collector, f"u5-{RUN}", 1)}
    for who in sent.values():
        assert count_when(collector.data_dir, "spans", 2 * len(who.traces), f"user_id = '{who.user}' or trace_id in "
                          f"({', '.join(repr(t) for t in who.traces)})", timeout=30) == 2 * len(who.traces)
        ids = ", ".join(repr(t) for t in who.traces)
        assert count_when(collector.data_dir, "logs", len(who.traces), f"trace_id in ({ids})") == len(who.traces)
        assert count_when(collector.data_dir, "span_content", len(who.traces), f"trace_id in ({ids})") == len(who.traces)
    for key in ("u1", "u2", "u3", "u5"):
        assert count_when(collector.data_dir, "logs", 1, f"trace_id is null and attributes['{sc.USER_ID}'] = "
                          f"'{sent[key].user}'") == 1
    yield sent


def test_dry_run_counts_and_deletes_nothing(collector: CollectorProcess, traffic: dict[str, UserTraffic]) -> None:
    u1 = traffic["u1"]
    before = _counts(collector, u1.traces)
    done = _cli(collector, "erase", "--user-id", u1.user, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "2 traces" in done.stdout
    # Two spans per trace, one content row per chat span, one log per trace and the trace-less one.
    assert "spans: 4 rows would be deleted" in done.stdout
    assert "span_content: 2 rows would be deleted" in done.stdout
    assert "logs: 3 rows would be deleted" in done.stdout
    assert _counts(collector, u1.traces) == before == {schema.SPANS: 4, schema.LOGS: 2, schema.SPAN_CONTENT: 2}
    assert _untraced_logs(collector, u1.user) == 1
    listed = _cli(collector, "erase", "--list", "--format", "json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


@pytest.mark.parametrize("where", ["true; delete from spans", "true) or (true", "user_id = 'x' -- comment",
                                   "no_such_column = 1"])
def test_bad_where_is_refused_and_deletes_nothing(collector: CollectorProcess, traffic: dict[str, UserTraffic],
                                                  where: str) -> None:
    everything = [t for who in traffic.values() for t in who.traces]
    before = _counts(collector, everything)
    done = _cli(collector, "erase", "--where", where)
    assert done.returncode == 2 and done.stderr.startswith("error: --where"), (done.stdout, done.stderr)
    assert _counts(collector, everything) == before


def test_where_erasure_then_the_maintenance_vacuum(collector: CollectorProcess,
                                                   traffic: dict[str, UserTraffic]) -> None:
    # First of the erasures: no earlier erasure raced an append here, so no abandoned file (see the
    # next test) holds u3's rows; the maintenance vacuum takes only what a commit removed.
    u3 = traffic["u3"]
    done = _cli(collector, "erase", "--where", f"user_id = '{u3.user}'")
    assert done.returncode == 0, done.stderr
    assert _counts(collector, u3.traces) == {t: 0 for t in ERASED}
    assert _untraced_logs(collector, u3.user) == 1  # --where erases traces; trace-less logs need --user-id
    traced = [m for m in u3.markers if not m.startswith("UNTRACED")]
    assert _on_disk(collector, traced) == set(traced)  # still in replaced files until vacuum
    # The maintenance round (here `spanlake compact`) vacuums them once the grace period is over.
    compact = _cli(collector, "compact", env={"SPANLAKE_VACUUM_GRACE_S": "0"})
    assert compact.returncode == 0, compact.stderr
    assert _on_disk(collector, traced) == set()
    assert [r["filter"] for r in json.loads(_cli(collector, "erase", "--list", "--format", "json").stdout)
            if r["filter_kind"] == "where"] == [f"user_id = '{u3.user}'"]


def test_user_erasure_with_a_live_collector_then_vacuum(collector: CollectorProcess,
                                                        traffic: dict[str, UserTraffic]) -> None:
    u1, u2 = traffic["u1"], traffic["u2"]
    assert _on_disk(collector, u1.markers) == set(u1.markers)  # the check below can see what it looks for
    assert _raw_bytes_hold(collector, u1.user)  # (the user id, uncompressed in Parquet statistics)
    # Keep the collector appending u2's traffic while u1 is erased: commits race, nothing of u2 may go.
    more: list[UserTraffic] = []
    erasing = threading.Event()

    def send_more() -> None:
        while not erasing.is_set() and len(more) < 40:
            more.append(_send(collector, u2.user, 1))

    sender = threading.Thread(target=send_more)
    sender.start()
    try:
        done = _cli(collector, "erase", "--user-id", u1.user, "--vacuum-now")
    finally:
        erasing.set()
        sender.join(60)
    assert done.returncode == 0, done.stderr
    assert "spans: 4 rows deleted" in done.stdout and "logs: 3 rows deleted" in done.stdout
    assert "span_content: 2 rows deleted" in done.stdout

    assert _counts(collector, u1.traces) == {t: 0 for t in ERASED}
    assert _untraced_logs(collector, u1.user) == 0
    assert query(collector.data_dir, f"select count(*) from spans where user_id = '{u1.user}'").column(0)[0].as_py() == 0
    u2_traces = u2.traces + [t for m in more for t in m.traces]
    assert len(more) >= 1
    ids = ", ".join(repr(t) for t in u2_traces)
    n = len(u2_traces)
    assert count_when(collector.data_dir, "spans", 2 * n, f"trace_id in ({ids})") == 2 * n
    assert count_when(collector.data_dir, "logs", n, f"trace_id in ({ids})") == n
    assert count_when(collector.data_dir, "span_content", n, f"trace_id in ({ids})") == n
    assert _counts(collector, u2_traces) == {schema.SPANS: 2 * n, schema.LOGS: n, schema.SPAN_CONTENT: n}
    assert count_when(collector.data_dir, "logs", 1 + len(more), f"trace_id is null and attributes['{sc.USER_ID}'] "
                      f"= '{u2.user}'") == 1 + len(more)
    u2.markers += [m for extra in more for m in extra.markers]

    assert _on_disk(collector, u1.markers) == set()
    assert not _raw_bytes_hold(collector, u1.user)
    assert _on_disk(collector, u2.markers) == set(u2.markers)

    records = [r for r in json.loads(_cli(collector, "erase", "--list", "--format", "json").stdout)
               if r["filter"] == u1.user]
    assert len(records) == 1
    record = records[0]
    assert (record["filter_kind"], record["traces"], record["spans_deleted"], record["logs_deleted"],
            record["span_content_deleted"]) == ("user_id", 2, 4, 3, 2)
    assert record["files_vacuumed"] > 0 and record["erased_at"]
    stored = json.dumps(record)
    assert not [m for m in u1.markers if m in stored] and not [t for t in u1.traces if t in stored]
    erasure_log = [p for p in (collector.data_dir / "lake" / schema.ERASURES).rglob("*") if p.is_file()]
    assert erasure_log and not [m for m in u1.markers for p in erasure_log if m.encode() in p.read_bytes()]


def test_trace_id_erasure_removes_only_that_trace(collector: CollectorProcess,
                                                  traffic: dict[str, UserTraffic]) -> None:
    gone, kept = traffic["anon"].traces
    # What a rewrite that lost a commit race leaves: a file no commit references, with copies of rows.
    abandoned = {trace: _abandoned_copy(collector, trace) for trace in (gone, kept)}
    done = _cli(collector, "erase", "--trace-id", gone.upper(), "--dry-run")
    assert done.returncode == 0 and "spans: 2 rows would be deleted" in done.stdout, done.stderr
    done = _cli(collector, "erase", "--trace-id", gone, "--vacuum-now")
    assert done.returncode == 0, done.stderr
    assert _counts(collector, [gone]) == {t: 0 for t in ERASED}
    assert _counts(collector, [kept]) == {schema.SPANS: 2, schema.LOGS: 1, schema.SPAN_CONTENT: 1}
    # --vacuum-now takes the abandoned copy of the erased trace; one without erased rows is left to the
    # maintenance vacuum (after ABANDONED_FILE_HOURS).
    assert not abandoned[gone].exists() and abandoned[kept].exists()
    bad = _cli(collector, "erase", "--trace-id", "not-a-trace")
    assert bad.returncode == 2 and "32 hex" in bad.stderr


def test_spans_only_keeps_the_rest_of_the_trace(collector: CollectorProcess, traffic: dict[str, UserTraffic]) -> None:
    u5 = traffic["u5"]
    refused = _cli(collector, "erase", "--trace-id", u5.traces[0], "--spans-only")
    assert refused.returncode == 2 and "--spans-only" in refused.stderr
    done = _cli(collector, "erase", "--where", f"user_id = '{u5.user}'", "--spans-only", "--vacuum-now")
    assert done.returncode == 0, done.stderr
    assert "spans: 1 rows deleted" in done.stdout and "spans in 1 traces" in done.stdout
    # The chat span, its content and the log record written in its context go; the app span stays.
    assert _counts(collector, u5.traces) == {schema.SPANS: 1, schema.LOGS: 0, schema.SPAN_CONTENT: 0}
    assert query(collector.data_dir, f"select name, user_id from spans where trace_id = '{u5.traces[0]}'"
                 ).to_pylist() == [{"name": "POST /chat", "user_id": None}]
    traced = [m for m in u5.markers if not m.startswith("UNTRACED")]
    assert _on_disk(collector, traced) == set()
    record = [r for r in json.loads(_cli(collector, "erase", "--list", "--format", "json").stdout)
              if r["filter"] == f"user_id = '{u5.user}'"]
    assert [(r["scope"], r["spans_deleted"], r["logs_deleted"], r["span_content_deleted"]) for r in record] == [
        ("spans", 1, 1, 1)]


def test_an_older_lake_stops_logging_content_statistics(tmp_path: Path) -> None:
    """Tables created before statistics were limited (all columns) are brought up to date on open, so
    later commits keep no prompt text in the Delta log."""
    lake = tmp_path / "lake"
    path = lake / schema.SPAN_CONTENT
    path.mkdir(parents=True)
    DeltaTable.create(str(path), schema=schema.arrow_schema(schema.SPAN_CONTENT), partition_by=[schema.PARTITION_COLUMN],
                      configuration=TABLE_CONFIG)
    writer = LakeWriter(lake)
    marker = f"PROMPT-old-lake-{RUN}"
    now = dt.datetime.now(dt.timezone.utc)
    row = {"trace_id": "ab" * 16, "span_id": "cd" * 8, "time": now, "input_messages": marker, "source": "span",
           schema.PARTITION_COLUMN: now.date()}
    writer.append(schema.SPAN_CONTENT, pa.Table.from_pylist([row], schema=schema.arrow_schema(schema.SPAN_CONTENT)), 1)
    log = sorted((path / "_delta_log").glob("*.json"))
    assert not [p for p in log if marker.encode() in p.read_bytes()]
    assert DeltaTable(str(path)).metadata().configuration["delta.dataSkippingStatsColumns"] == "time"


def test_maintenance_deletes_files_abandoned_by_failed_writes(tmp_path: Path) -> None:
    """A write attempt that lost a commit race leaves a file no commit references: the maintenance vacuum
    deletes it once older than any write in progress can be, and leaves younger ones (a write committing)."""
    lake = tmp_path / "lake"
    LakeWriter(lake)
    day = lake / schema.SPAN_CONTENT / f"{schema.PARTITION_COLUMN}=2026-12-01"
    day.mkdir()
    rows = pa.Table.from_pylist([{"trace_id": "ab" * 16, "input_messages": "PROMPT-abandoned"}])
    old, young = day / "part-00000-old.zstd.parquet", day / "part-00000-young.zstd.parquet"
    for path in (old, young):
        pq.write_table(rows, path)
    hours_ago = time.time() - (ABANDONED_FILE_HOURS * 3600 + 60)
    os.utime(old, (hours_ago, hours_ago))
    LakeMaintainer(lake, vacuum_grace_s=0, retention_days=0).run(dt.date(2026, 12, 2))
    assert not old.exists() and young.exists()
