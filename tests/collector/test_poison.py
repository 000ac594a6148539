"""A bad record never blocks good ones (issue 12): poison requests over HTTP and gRPC, each followed by
good spans that must all land; a WAL record no writer can read is quarantined, counted, listed and
retried; one absurd token count cannot exhaust a budget.

Everything runs against a real collector process with ONE writer, so every request shares the WAL
shard a poison record would block. Time budget: about 70 s on a loaded 2-core machine (60 s idle).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from harness import CollectorProcess, count_when, http_get, http_post, query, stored_span_keys, wait_for
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from spanlake.collector.attributes import AttributeDecoder
from spanlake.collector.convert import SpanBuilder
from spanlake.collector.otlp_proto import _encode_varint
from spanlake.collector.quarantine import Quarantine
from spanlake.collector.settings import Settings
from spanlake.collector.storage.lake_writer import ensure_tables
from spanlake.collector.storage.schema import SPANS
from spanlake.collector.wal import WalReader, WriteAheadLog
from spanlake.collector.writer_process import LakeWriterLoop

ENV = {"SPANLAKE_FLUSH_INTERVAL_S": "0.2", "SPANLAKE_WRITERS": "1"}
PB = {"Content-Type": "application/x-protobuf"}
PATHS = {"traces": ("/v1/traces", "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                    trace_service_pb2.ExportTraceServiceResponse),
         "logs": ("/v1/logs", "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                  logs_service_pb2.ExportLogsServiceResponse),
         "metrics": ("/v1/metrics", "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                     metrics_service_pb2.ExportMetricsServiceResponse)}
NOW = time.time_ns()
GENAI = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}


# --- building requests ---------------------------------------------------------------------------

def _value(v: Any) -> common_pb2.AnyValue:
    if isinstance(v, common_pb2.AnyValue):
        return v
    if isinstance(v, str):
        return common_pb2.AnyValue(string_value=v)
    if isinstance(v, float):
        return common_pb2.AnyValue(double_value=v)
    return common_pb2.AnyValue(int_value=v)


def _attrs(values: dict[str, Any]) -> list[common_pb2.KeyValue]:
    return [common_pb2.KeyValue(key=k, value=_value(v)) for k, v in values.items()]


def _nested_kv(key: str, depth: int) -> bytes:
    """KeyValue bytes whose value nests ``depth`` kvlists (built on the wire: the protobuf library will not)."""
    value = common_pb2.AnyValue(string_value="bottom").SerializeToString()
    for _ in range(depth):
        value = _ld(6, _ld(1, _ld(1, b"k") + _ld(2, value)))  # AnyValue.kvlist_value{values{key, value}}
    return _ld(1, key.encode()) + _ld(2, value)


def _span(name: str, attrs: dict[str, Any] | None = None, **kw: Any) -> trace_pb2.Span:
    return trace_pb2.Span(trace_id=uuid.uuid4().bytes, span_id=uuid.uuid4().bytes[:8], name=name,
                          start_time_unix_nano=kw.pop("start", NOW), end_time_unix_nano=kw.pop("end", NOW + 10**6),
                          attributes=_attrs(attrs or {}), **kw)


def _traces(spans: list[trace_pb2.Span], resource: dict[str, Any] | None = None,
            scope: dict[str, Any] | None = None) -> trace_service_pb2.ExportTraceServiceRequest:
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(_attrs({"service.name": "poison", **(resource or {})}))
    ss = rs.scope_spans.add()
    ss.scope.name = "poison-test"
    ss.scope.attributes.extend(_attrs(scope or {}))
    ss.spans.extend(spans)
    return req


def good_spans(tag: str, n: int = 5) -> trace_service_pb2.ExportTraceServiceRequest:
    return _traces([_span(f"{tag}-{i}") for i in range(n)])


def _ld(field: int, payload: bytes) -> bytes:
    return bytes([(field << 3) | 2]) + _encode_varint(len(payload)) + payload


def _with_raw_resource(tag: str, resource: bytes, schema_url: bytes = b"", scope: bytes = b"") -> bytes:
    """ExportTraceServiceRequest bytes whose ResourceSpans carry ``resource`` (and ScopeSpans ``scope``)
    as sent, possibly corrupt or too deep, with two good spans."""
    spans = b"".join(_ld(2, _span(f"{tag}-{i}").SerializeToString()) for i in range(2))
    scope_spans = _ld(2, (_ld(1, scope) if scope else b"") + spans)
    return _ld(1, _ld(1, resource) + scope_spans + (_ld(3, schema_url) if schema_url else b""))


def _deep_resource(depth: int) -> Callable[[str], bytes]:
    return lambda tag: _with_raw_resource(tag, _ld(1, _nested_kv("deep", depth)))


def _deep_scope(depth: int) -> Callable[[str], bytes]:
    return lambda tag: _with_raw_resource(tag, b"", scope=_ld(1, b"poison-scope") + _ld(3, _nested_kv("deep", depth)))


def _logs(tag: str, **kw: Any) -> bytes:
    req = logs_service_pb2.ExportLogsServiceRequest()
    req.resource_logs.add().scope_logs.add().log_records.append(
        logs_pb2.LogRecord(body=common_pb2.AnyValue(string_value=tag), **kw))
    return req.SerializeToString()


def _metrics(metric: metrics_pb2.Metric) -> bytes:
    req = metrics_service_pb2.ExportMetricsServiceRequest()
    req.resource_metrics.add().scope_metrics.add().metrics.append(metric)
    return req.SerializeToString()


# --- sending -------------------------------------------------------------------------------------

def send(collector: CollectorProcess, protocol: str, signal: str, body: bytes) -> Any:
    """Export ``body`` as sent (bytes, possibly not a valid message); returns the parsed response (200/OK only)."""
    http_path, grpc_method, response_type = PATHS[signal]
    if protocol == "http":
        status, _, answer = http_post(collector.http_url + http_path, body, PB)
        assert status == 200, answer[:300]
        return response_type.FromString(answer)
    with grpc.insecure_channel(collector.grpc_target) as channel:
        raw = channel.unary_unary(grpc_method, request_serializer=None, response_deserializer=None)
        return response_type.FromString(raw(body, timeout=20))


def metric_value(collector: CollectorProcess, name: str, **labels: str) -> float:
    _, body = http_get(collector.http_url + "/metrics")
    label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(label_text) + r"\}" if labels else r"(\{\})?") + r" (\S+)"
    found = re.search("^" + pattern + "$", body.decode(), re.M)
    return float(found.group(1)) if found else 0.0


def cli(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spanlake.ui.cli", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=60, env=env)


def assert_healthy(collector: CollectorProcess) -> None:
    status, body = http_get(collector.http_url + "/healthz")
    assert status == 200, body
    assert metric_value(collector, "spanlake_writer_restarts_total") == 0
    assert "died (exit code" not in collector.read_log()


def one(data_dir: Path, sql: str) -> dict[str, Any]:
    rows = query(data_dir, sql).to_pylist()
    assert len(rows) == 1, rows
    return rows[0]


# --- the poison cases: (signal, body, check of what was stored) --------------------------------

Check = Callable[[Path, str], None]


def _span_case(attrs: dict[str, Any] | None = None, **kw: Any) -> Callable[[str], bytes]:
    return lambda tag: _traces([_span(f"{tag}-bad", attrs, **kw)]).SerializeToString()


def _stored_span(data_dir: Path, tag: str) -> dict[str, Any]:
    count_when(data_dir, "spans", 1, f"name = '{tag}-bad'")
    return one(data_dir, "select *, map_extract(attributes, 'spanlake.clock_adjusted')[1] as clock, "
                         "map_extract(attributes, 'spanlake.value_clamped')[1] as clamped, "
                         "map_extract(attributes, 'spanlake.rejected_attributes')[1] as rejected "
                         f"from spans where name = '{tag}-bad'")


def check_clock(data_dir: Path, tag: str) -> None:
    row = _stored_span(data_dir, tag)
    assert "end_time beyond 2^63-1 ns" in row["clock"] and row["end_time_unix_nano"] == row["start_time_unix_nano"]


def check_long_duration(data_dir: Path, tag: str) -> None:
    assert _stored_span(data_dir, tag)["duration_ms"] == pytest.approx((2**53 + 5) / 1e6)


def check_event_time(data_dir: Path, tag: str) -> None:
    row = _stored_span(data_dir, tag)
    assert "time_unix_nano 9223372036854775808 beyond 2^63-1 ns" in row["clamped"]
    assert row["events"][0]["time_unix_nano"] == 0


def check_rejected(key: str, column: str) -> Check:
    def check(data_dir: Path, tag: str) -> None:
        row = _stored_span(data_dir, tag)
        assert json.loads(row["rejected"]) == [key] and row[column] is None
        assert key not in dict(row["attributes"])
    return check


def check_finish_reasons(data_dir: Path, tag: str) -> None:
    row = _stored_span(data_dir, tag)
    assert row["operation"] == "chat" and dict(row["attributes"])["gen_ai.response.finish_reasons"] == "[" * 5000


def check_stored_spans(data_dir: Path, tag: str) -> None:
    """The spans of a salvaged request are stored (a salvaged body is never stored raw)."""
    assert count_when(data_dir, "spans", 2, f"name like '{tag}-%' and name not like '{tag}-good-%'") == 2


def check_log(data_dir: Path, tag: str) -> None:
    count_when(data_dir, "logs", 1, f"body = '{tag}'")
    row = one(data_dir, f"select map_extract(attributes, 'spanlake.value_clamped')[1] as clamped from logs "
                        f"where body = '{tag}'")
    assert "beyond 2^63-1 ns, treated as absent" in row["clamped"]


def check_metric(expected: str, **columns: Any) -> Check:
    def check(data_dir: Path, tag: str) -> None:
        count_when(data_dir, "metric_points", 1, f"name = '{tag}'")
        row = one(data_dir, "select *, map_extract(attributes, 'spanlake.value_clamped')[1] as clamped "
                            f"from metric_points where name = '{tag}'")
        assert expected in row["clamped"]
        assert {k: row[k] for k in columns} == columns
    return check


def _gauge(tag: str) -> bytes:
    return _metrics(metrics_pb2.Metric(name=tag, gauge=metrics_pb2.Gauge(data_points=[
        metrics_pb2.NumberDataPoint(time_unix_nano=2**63, as_int=1)])))


def _histogram(tag: str) -> bytes:
    return _metrics(metrics_pb2.Metric(name=tag, histogram=metrics_pb2.Histogram(data_points=[
        metrics_pb2.HistogramDataPoint(time_unix_nano=NOW, count=2**63, bucket_counts=[2**64 - 1, 1],
                                       explicit_bounds=[1.0])])))


def _temporality(tag: str) -> bytes:
    return _metrics(metrics_pb2.Metric(name=tag, sum=metrics_pb2.Sum(aggregation_temporality=7, data_points=[
        metrics_pb2.NumberDataPoint(time_unix_nano=NOW, as_double=1.5)])))


CASES: dict[str, tuple[str, Callable[[str], bytes], Check]] = {
    "span_end_2^63": ("traces", _span_case(end=2**63), check_clock),
    "span_duration_over_2^53_ns": ("traces", _span_case(start=NOW, end=NOW + 2**53 + 5), check_long_duration),
    "event_time_2^63": ("traces", _span_case(events=[trace_pb2.Span.Event(time_unix_nano=2**63, name="e")]),
                        check_event_time),
    "input_tokens_20_digits": ("traces", _span_case({**GENAI, "gen_ai.usage.input_tokens": "9" * 20}),
                               check_rejected("gen_ai.usage.input_tokens", "input_tokens")),
    "input_tokens_1e300": ("traces", _span_case({**GENAI, "gen_ai.usage.input_tokens": 1e300}),
                           check_rejected("gen_ai.usage.input_tokens", "input_tokens")),
    "http_status_30_digits": ("traces", _span_case({**GENAI, "http.response.status_code": "1" * 30}),
                              check_rejected("http.response.status_code", "http_status")),
    "finish_reasons_5000_brackets": ("traces", _span_case({**GENAI, "gen_ai.response.finish_reasons": "[" * 5000}),
                                     check_finish_reasons),
    "resource_kvlist_depth_33": ("traces", _deep_resource(33), check_stored_spans),
    "resource_kvlist_depth_40": ("traces", _deep_resource(40), check_stored_spans),
    "scope_kvlist_depth_33": ("traces", _deep_scope(33), check_stored_spans),
    "scope_kvlist_depth_40": ("traces", _deep_scope(40), check_stored_spans),
    "corrupt_resource": ("traces", lambda tag: _with_raw_resource(tag, b"\x0a\xff\xff\xff"), check_stored_spans),
    "schema_url_invalid_utf8": ("traces", lambda tag: _with_raw_resource(
        tag, common_pb2.KeyValue().SerializeToString(), b"http://x/\xff\xfe"), check_stored_spans),
    "log_time_2^63": ("logs", lambda tag: _logs(tag, time_unix_nano=2**63, observed_time_unix_nano=2**64 - 1),
                      check_log),
    "metric_time_2^63": ("metrics", _gauge, check_metric("time_unix_nano 9223372036854775808", time_unix_nano=0)),
    "histogram_count_2^63": ("metrics", _histogram, check_metric(
        "count 9223372036854775808 above 2^63-1", count=2**63 - 1, bucket_counts=[2**63 - 1, 1])),
    "temporality_7": ("metrics", _temporality, check_metric("aggregation_temporality 7 unknown",
                                                            aggregation_temporality="UNSPECIFIED")),
}


@pytest.fixture(scope="module")
def poison_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    data_dir = tmp_path_factory.mktemp("poison") / "data"
    data_dir.mkdir()
    proc = CollectorProcess(data_dir, env=ENV).start()
    yield proc
    assert_healthy(proc)
    assert metric_value(proc, "spanlake_quarantined_records_total", signal="traces") == 0  # all handled upfront
    assert proc.stop() == 0, proc.read_log()[-3000:]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("case", list(CASES))
def test_poison_request_is_stored_repaired_and_good_spans_after_it_land(
        poison_collector: CollectorProcess, case: str, protocol: str) -> None:
    signal, build, check = CASES[case]
    tag = f"{case.replace('^', '').replace('-', '_')}_{protocol}"
    send(poison_collector, protocol, signal, build(tag))
    send(poison_collector, protocol, "traces", good_spans(f"{tag}-good", 5).SerializeToString())
    assert count_when(poison_collector.data_dir, "spans", 5, f"name like '{tag}-good-%'", timeout=30) == 5, \
        poison_collector.read_log()[-3000:]
    check(poison_collector.data_dir, tag)
    assert_healthy(poison_collector)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_salvage_answer_says_what_was_dropped(poison_collector: CollectorProcess, protocol: str) -> None:
    """A resource salvage could not parse is counted in the partial-success answer, not dropped silently."""
    answer = send(poison_collector, protocol, "traces", _with_raw_resource(f"answer_{protocol}", b"\x0a\xff\xff\xff"))
    assert "1 undecodable resource/scope part(s) dropped" in answer.partial_success.error_message
    deep = send(poison_collector, protocol, "traces", _deep_resource(33)(f"answer_deep_{protocol}"))
    assert "nested too deep cut with a marker" in deep.partial_success.error_message
    deeper = send(poison_collector, protocol, "traces", _deep_resource(40)(f"answer_deeper_{protocol}"))
    assert "undecodable attribute value(s) replaced by a marker" in deeper.partial_success.error_message


# --- the quarantine: a WAL record no writer can read ------------------------------------------

def _old_collector_body(tag: str) -> bytes:
    """What a collector before the fix wrote to its WAL as received: a body whose strict parse fails
    (salvage accepted it and answered 200), holding two good spans."""
    return _with_raw_resource(tag, b"\x0a\xff\xff\xff")


def _append_to_wal(data_dir: Path, bodies: list[bytes]) -> None:
    wal = WriteAheadLog(data_dir / "wal" / "shard-0", 64 * 1024 * 1024, True)
    try:
        for body in bodies:
            wal.append("traces", body, time.time_ns())
    finally:
        wal.close()


def test_unreadable_wal_record_is_quarantined_counted_listed_and_retried(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # A WAL left by a collector before the fix (an upgrade with a backlog): good, poison, good.
    _append_to_wal(data_dir, [good_spans("q-before").SerializeToString(), _old_collector_body("q-poison"),
                              good_spans("q-after").SerializeToString()])
    collector = CollectorProcess(data_dir, env=ENV).start()
    try:
        send(collector, "grpc", "traces", good_spans("q-live").SerializeToString())
        for tag in ("q-before", "q-after", "q-live"):
            assert count_when(data_dir, "spans", 5, f"name like '{tag}-%'", timeout=30) == 5, collector.read_log()[-3000:]
        assert wait_for(data_dir, "select 1", lambda _: metric_value(
            collector, "spanlake_quarantined_records_total", signal="traces") == 1, timeout=10)
        assert_healthy(collector)
        listed = cli(data_dir, "quarantine", "list")
        entry_id = Quarantine(data_dir / "quarantine").entries()[0].id
        assert f"{entry_id}  traces   quarantined" in listed.stdout and "DecodeError" in listed.stdout, listed
        shown = cli(data_dir, "quarantine", "show", entry_id)
        assert shown.returncode == 0 and "payload does not parse" in shown.stdout
        assert "quarantine: 1 record(s) set aside, 1 awaiting retry" in cli(data_dir, "status").stdout
        # retry re-sends it through the running collector, whose ingest now stores what it can read
        retried = cli(data_dir, "quarantine", "retry", "--all")
        assert retried.returncode == 0 and f"{entry_id}: re-sent (accepted with warning" in retried.stdout, retried
        assert count_when(data_dir, "spans", 2, "name like 'q-poison-%'", timeout=30) == 2
        assert [e.status for e in Quarantine(data_dir / "quarantine").entries()] == ["retried"]
        assert metric_value(collector, "spanlake_quarantined_records_total", signal="traces") == 1
    finally:
        assert collector.stop() == 0
    # A restart reads the shard again: the set-aside record is skipped (not converted or quarantined
    # twice, even though it was retried), and nothing is doubled.
    collector = CollectorProcess(data_dir, env=ENV).start()
    try:
        send(collector, "http", "traces", good_spans("q-restart").SerializeToString())
        count_when(data_dir, "spans", 5, "name like 'q-restart-%'", timeout=30)
        assert metric_value(collector, "spanlake_quarantined_records_total", signal="traces") == 1
        assert_healthy(collector)
    finally:
        assert collector.stop() == 0
    keys = stored_span_keys(data_dir)
    assert len(keys) == 5 * 4 + 2 and set(keys.values()) == {1}  # every span exactly once
    assert len(Quarantine(data_dir / "quarantine").entries()) == 1


def test_retry_without_a_running_collector_says_so(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    entry = Quarantine(data_dir / "quarantine").put(0, 123, "traces", NOW, b"\xff", "DecodeError: x")
    result = cli(data_dir, "quarantine", "retry", entry.id)
    assert result.returncode == 1 and "start `spanlake collector` first" in result.stderr


# --- budgets: one absurd value cannot drive them ------------------------------------------------

def test_absurd_token_counts_cannot_exhaust_a_budget(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config = tmp_path / "spanlake.toml"
    config.write_text('[[budgets]]\nname = "daily"\nperiod = "day"\nhard_usd = 100\n')
    collector = CollectorProcess(data_dir, extra_args=["--config", str(config)], env=ENV).start()
    try:
        spans = [_span("budget-max-int", {**GENAI, "gen_ai.usage.input_tokens": 10,
                                          "gen_ai.usage.output_tokens": 2**63 - 1}),
                 _span("budget-huge", {**GENAI, "gen_ai.usage.input_tokens": 10,
                                       "gen_ai.usage.output_tokens": 999_999_999}),
                 _span("budget-normal", {**GENAI, "gen_ai.usage.input_tokens": 1000,
                                         "gen_ai.usage.output_tokens": 1000})]
        send(collector, "http", "traces", _traces(spans[:2]).SerializeToString())
        send(collector, "grpc", "traces", _traces(spans[2:]).SerializeToString())
        count_when(data_dir, "spans", 3, "name like 'budget-%'", timeout=30)
        rows = {r["name"]: r for r in query(data_dir, "select name, output_tokens, total_tokens, cost_usd, "
                                                      "cost_suspect from spans where name like 'budget-%'").to_pylist()}
        assert rows["budget-max-int"]["output_tokens"] is None and rows["budget-max-int"]["total_tokens"] == 10
        assert rows["budget-huge"]["cost_usd"] > 1000 and rows["budget-huge"]["cost_suspect"] is True
        assert rows["budget-normal"]["cost_suspect"] is False and rows["budget-normal"]["cost_usd"] < 1
        status, body = http_get(collector.http_url + "/v1/budgets")
        assert status == 200
        budget = json.loads(body)["budgets"][0]
        counted = rows["budget-normal"]["cost_usd"] + rows["budget-max-int"]["cost_usd"]  # its input tokens only
        assert budget["status"] == "ok" and budget["spend_usd"] == pytest.approx(counted)
    finally:
        assert collector.stop() == 0
    # reprice recomputes the flag against the current bound
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    repriced = cli(data_dir, "reprice", "--since", today, env={**os.environ, "SPANLAKE_MAX_CALL_COST_USD": "1000000"})
    assert repriced.returncode == 0, repriced.stderr
    flags = {r["name"]: r["cost_suspect"] for r in query(data_dir, "select name, cost_suspect from spans "
                                                                   "where name like 'budget-%'").to_pylist()}
    assert flags == {"budget-max-int": False, "budget-huge": False, "budget-normal": False}


# --- a batch that fails as a whole is retried record by record ------------------------------------

class ConverterDefect(SpanBuilder):
    """Fault injection: a converter bug not known yet (every known one is fixed), which fails a whole
    batch at Arrow conversion time whenever it holds a span named 'explode'."""

    def take(self, keep: list[bool] | None = None) -> Any:
        if any(row[4] == "explode" for row in self.rows):
            self._reset()
            raise ValueError("converter defect: cannot convert a span named 'explode'")
        return super().take(keep)


def test_a_batch_failing_as_a_whole_sets_aside_only_the_bad_record_once(tmp_path: Path) -> None:
    """In one flush: good, bad, good. The bad record is found by converting record by record, set aside,
    and the shard commits past it; a restarted writer (with the defect fixed) neither converts it again
    nor commits anything twice."""
    settings = Settings(data_dir=tmp_path / "data", writers=1, flush_interval_s=60.0)
    ensure_tables(settings.lake_dir)
    first, bad, last = good_spans("rbr-first"), _traces([_span("explode")]), good_spans("rbr-last")
    _append_to_wal(settings.data_dir, [r.SerializeToString() for r in (first, bad, last)])
    loop = LakeWriterLoop(settings, queue.Queue())
    loop.builders[SPANS] = ConverterDefect(AttributeDecoder(65536, 16), 10**9, loop.genai)
    assert loop.step() and loop.pending_rows() == 11  # all three converted into one pending batch
    loop.flush()
    names = sorted(r["name"] for r in query(settings.data_dir, "select name from spans").to_pylist())
    assert names == sorted([f"rbr-first-{i}" for i in range(5)] + [f"rbr-last-{i}" for i in range(5)])
    [entry] = Quarantine(settings.quarantine_dir).entries()
    assert "converter defect" in entry.error and entry.signal == "traces"
    assert trace_service_pb2.ExportTraceServiceRequest.FromString(
        Quarantine(settings.quarantine_dir).payload(entry)) == bad
    assert loop.positions[SPANS] == loop.consumed > entry.end_position  # committed past it
    # A bad record last in the WAL: nothing to commit after it, so only the quarantine remembers it.
    _append_to_wal(settings.data_dir, [_traces([_span("explode")]).SerializeToString()])
    assert loop.step()
    loop.flush()
    assert len(Quarantine(settings.quarantine_dir).entries()) == 2
    restarted = LakeWriterLoop(settings, queue.Queue())  # the defect fixed: it could convert it now
    restarted.step()
    assert restarted.pending_rows() == 0  # but it was set aside: skipped, not stored after the fact
    restarted.reader = WalReader(settings.wal_shard_dir(0), 0)  # and from the WAL's very start
    restarted.step()
    assert restarted.pending_rows() == 0
    restarted.flush()
    keys = stored_span_keys(settings.data_dir)
    assert len(keys) == 10 and set(keys.values()) == {1}
    assert len(Quarantine(settings.quarantine_dir).entries()) == 2
