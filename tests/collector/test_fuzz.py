"""Seeded fuzzing of the ingest → WAL → writer path (issue 12): thousands of mutated OTLP requests per
signal (random byte mutations of valid protobuf requests, and structure-aware ones: extreme times and
counts, absurd token values, out-of-range enums, deep nesting, invalid UTF-8), over HTTP and gRPC, to
a real collector with one writer. Every answer must be OTLP-correct (200/OK or 400/INVALID_ARGUMENT),
the writer must never die, nothing may need the quarantine (the WAL holds only what the writer can
convert), and every good span sent afterwards must land exactly once.

Time budget: about 60 s on a loaded 2-core machine (FUZZ_PER_SIGNAL sets the size).
"""

from __future__ import annotations

import http.client
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from harness import CollectorProcess, count_when, http_get, stored_span_keys
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from spanlake.collector.otlp_proto import _encode_varint
from spanlake.collector.quarantine import Quarantine

SEED = 12
FUZZ_PER_SIGNAL = 2000
STRUCTURED_SHARE = 0.35
# Every HTTP_EVERY-th request goes over HTTP, the rest over gRPC: an HTTP round trip on a kept-alive
# connection takes ~36 ms here (against ~1.5 ms for gRPC), which would blow the time budget.
HTTP_EVERY = 10
ENV = {"SPANLAKE_FLUSH_INTERVAL_S": "0.3", "SPANLAKE_WRITERS": "1", "SPANLAKE_WAL_FSYNC": "false"}
PATHS = {"traces": ("/v1/traces", "/opentelemetry.proto.collector.trace.v1.TraceService/Export"),
         "logs": ("/v1/logs", "/opentelemetry.proto.collector.logs.v1.LogsService/Export"),
         "metrics": ("/v1/metrics", "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export")}
U64 = 2**64 - 1
NOW = time.time_ns()
EXTREME_INTS = [0, 1, 2**31 - 1, 2**32 - 1, 2**53 + 1, 2**63 - 1, 2**63, U64]
ABSURD_VALUES: list[Any] = ["9" * 20, "1" * 30, "1e300", "-5", "NaN", "[" * 5000, "{" * 3000, 1e300, -1.0,
                            float("nan"), float("inf"), 2**63 - 1, -(2**63), 10**9 + 1]
TOKEN_KEYS = ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens",
              "llm.usage.total_tokens", "gen_ai.usage.cache_read_input_tokens", "llm.token_count.prompt",
              "http.response.status_code", "http.status_code", "gen_ai.response.finish_reasons",
              "gen_ai.request.max_tokens", "gen_ai.usage.cost", "langfuse.observation.usage_details",
              "gen_ai.input.messages", "gen_ai.output.messages", "llm.input_messages"]


def _any(v: Any) -> common_pb2.AnyValue:
    if isinstance(v, bool):
        return common_pb2.AnyValue(bool_value=v)
    if isinstance(v, str):
        return common_pb2.AnyValue(string_value=v)
    if isinstance(v, float):
        return common_pb2.AnyValue(double_value=v)
    if isinstance(v, bytes):
        return common_pb2.AnyValue(bytes_value=v)
    if isinstance(v, list):
        return common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=[_any(x) for x in v]))
    if isinstance(v, dict):
        return common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=_kvs(v)))
    return common_pb2.AnyValue(int_value=max(min(v, 2**63 - 1), -(2**63)))


def _kvs(d: dict[str, Any]) -> list[common_pb2.KeyValue]:
    return [common_pb2.KeyValue(key=k, value=_any(v)) for k, v in d.items()]


GENAI_ATTRS: dict[str, Any] = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": 120,
    "gen_ai.usage.output_tokens": 45, "gen_ai.response.finish_reasons": ["stop"], "gen_ai.request.temperature": 0.2,
    "gen_ai.input.messages": '[{"role":"user","parts":[{"type":"text","content":"hi"}]}]',
    "gen_ai.output.messages": '[{"role":"assistant","parts":[{"type":"text","content":"hello"}],"finish_reason":"stop"}]',
    "http.response.status_code": 200, "flag": True, "blob": b"\x00\x01", "list": [1, "a", 2.5],
    "nested": {"a": {"b": [1, 2, {"c": "d"}]}},
}


def _trace_request(rng: random.Random, tag: str = "fz") -> trace_service_pb2.ExportTraceServiceRequest:
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(_kvs({"service.name": "fuzz", "deployment.environment.name": "test"}))
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "opentelemetry.instrumentation.openai_v2", "2.1b0"
    for i in range(rng.randint(1, 4)):
        start = NOW + i * 1000
        ss.spans.append(trace_pb2.Span(
            trace_id=rng.randbytes(16), span_id=rng.randbytes(8), parent_span_id=rng.randbytes(8) if i else b"",
            name=f"{tag}-chat gpt-4o", kind=3, start_time_unix_nano=start, end_time_unix_nano=start + 5 * 10**8,
            attributes=_kvs(GENAI_ATTRS), status=trace_pb2.Status(code=rng.choice([0, 1, 2]), message="m"),
            events=[trace_pb2.Span.Event(time_unix_nano=start + 10**6, name="gen_ai.content.chunk",
                                         attributes=_kvs({"x": 1}))],
            links=[trace_pb2.Span.Link(trace_id=rng.randbytes(16), span_id=rng.randbytes(8))]))
    return req


def _log_request(rng: random.Random) -> logs_service_pb2.ExportLogsServiceRequest:
    req = logs_service_pb2.ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(_kvs({"service.name": "fuzz"}))
    sl = rl.scope_logs.add()
    for i in range(rng.randint(1, 4)):
        sl.log_records.append(logs_pb2.LogRecord(
            time_unix_nano=NOW + i, observed_time_unix_nano=NOW + i, severity_number=9, severity_text="INFO",
            event_name=rng.choice(["gen_ai.user.message", "gen_ai.choice", ""]), trace_id=rng.randbytes(16),
            span_id=rng.randbytes(8), body=_any(rng.choice(["text", {"content": "hi", "role": "user"}])),
            attributes=_kvs({"gen_ai.system": "openai", "n": i})))
    return req


def _metric_request(rng: random.Random) -> metrics_service_pb2.ExportMetricsServiceRequest:
    req = metrics_service_pb2.ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(_kvs({"service.name": "fuzz"}))
    sm = rm.scope_metrics.add()
    attrs = _kvs({"gen_ai.token.type": "input", "gen_ai.request.model": "gpt-4o"})
    point = {"time_unix_nano": NOW, "start_time_unix_nano": NOW - 10**9, "attributes": attrs}
    sm.metrics.extend([
        metrics_pb2.Metric(name="g", gauge=metrics_pb2.Gauge(data_points=[metrics_pb2.NumberDataPoint(as_double=1.5, **point)])),
        metrics_pb2.Metric(name="s", sum=metrics_pb2.Sum(aggregation_temporality=2, is_monotonic=True, data_points=[
            metrics_pb2.NumberDataPoint(as_int=7, **point)])),
        metrics_pb2.Metric(name="gen_ai.client.token.usage", unit="{token}", histogram=metrics_pb2.Histogram(
            aggregation_temporality=1, data_points=[metrics_pb2.HistogramDataPoint(
                count=3, sum=12.0, min=1.0, max=8.0, bucket_counts=[1, 1, 1], explicit_bounds=[2.0, 5.0], **point)])),
        metrics_pb2.Metric(name="e", exponential_histogram=metrics_pb2.ExponentialHistogram(data_points=[
            metrics_pb2.ExponentialHistogramDataPoint(
                count=4, scale=2, zero_count=1, positive=metrics_pb2.ExponentialHistogramDataPoint.Buckets(
                    offset=1, bucket_counts=[1, 2]), **point)])),
        metrics_pb2.Metric(name="q", summary=metrics_pb2.Summary(data_points=[metrics_pb2.SummaryDataPoint(
            count=2, sum=3.0, quantile_values=[metrics_pb2.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=1.0)],
            **point)])),
    ][: rng.randint(1, 5)])
    return req


BUILDERS: dict[str, Callable[[random.Random], Any]] = {"traces": _trace_request, "logs": _log_request,
                                                       "metrics": _metric_request}


# --- mutations -----------------------------------------------------------------------------------

def _ld(field: int, payload: bytes) -> bytes:
    return bytes([(field << 3) | 2]) + _encode_varint(len(payload)) + payload


def _deep_kv(depth: int) -> bytes:
    value = common_pb2.AnyValue(string_value="x").SerializeToString()
    for _ in range(depth):
        value = _ld(6, _ld(1, _ld(1, b"k") + _ld(2, value)))
    return _ld(1, b"deep") + _ld(2, value)


def mutate_bytes(rng: random.Random, body: bytes) -> bytes:
    """One to four random byte edits: flip, set, insert, delete, truncate, duplicate a slice."""
    data = bytearray(body)
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        op, at = rng.randrange(6), rng.randrange(len(data))
        if op == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[at] = rng.choice([0x00, 0xFF, 0x80, 0x7F, rng.randrange(256)])
        elif op == 2:
            data[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op == 3:
            del data[at:at + rng.randint(1, 8)]
        elif op == 4:
            del data[at:]
        else:
            end = min(len(data), at + rng.randint(1, 64))
            data[at:at] = data[at:end]
    return bytes(data)


def _span_mutation(rng: random.Random, req: Any) -> None:
    span = rng.choice(req.resource_spans[0].scope_spans[0].spans)
    choice = rng.randrange(8)
    if choice == 0:
        span.end_time_unix_nano = rng.choice(EXTREME_INTS)
    elif choice == 1:
        span.start_time_unix_nano = rng.choice(EXTREME_INTS)
    elif choice == 2:
        span.events[0].time_unix_nano = rng.choice(EXTREME_INTS)
    elif choice == 3:
        span.kind, span.status.code = rng.randrange(-(2**31), 2**31), rng.randrange(-(2**31), 2**31)
    elif choice == 4:
        span.dropped_attributes_count, span.flags = 2**32 - 1, 2**32 - 1
    else:
        span.attributes.append(common_pb2.KeyValue(key=rng.choice(TOKEN_KEYS), value=_any(rng.choice(ABSURD_VALUES))))


def _log_mutation(rng: random.Random, req: Any) -> None:
    rec = rng.choice(req.resource_logs[0].scope_logs[0].log_records)
    choice = rng.randrange(4)
    if choice == 0:
        rec.time_unix_nano = rng.choice(EXTREME_INTS)
    elif choice == 1:
        rec.observed_time_unix_nano = rng.choice(EXTREME_INTS)
    elif choice == 2:
        rec.severity_number = rng.randrange(-(2**31), 2**31)
    else:
        rec.body.CopyFrom(_any(rng.choice(ABSURD_VALUES)))


def _metric_mutation(rng: random.Random, req: Any) -> None:
    metric = rng.choice(req.resource_metrics[0].scope_metrics[0].metrics)
    data = getattr(metric, metric.WhichOneof("data"))
    point = data.data_points[0]
    choice = rng.randrange(5)
    if choice == 0:
        point.time_unix_nano = rng.choice(EXTREME_INTS)
    elif choice == 1:
        point.start_time_unix_nano = rng.choice(EXTREME_INTS)
    elif choice == 2 and hasattr(data, "aggregation_temporality"):
        data.aggregation_temporality = rng.randrange(-(2**31), 2**31)
    elif choice == 3 and hasattr(point, "count"):
        point.count = rng.choice(EXTREME_INTS)
        if hasattr(point, "bucket_counts"):
            point.bucket_counts[:] = [rng.choice(EXTREME_INTS) for _ in range(3)]
        if hasattr(point, "zero_count"):
            point.zero_count, point.scale = rng.choice(EXTREME_INTS), rng.choice([-(2**31), 2**31 - 1])
            point.positive.bucket_counts[:] = [U64]
    else:
        for name in ("as_double", "sum", "min", "max"):
            if hasattr(point, name) and (name != "as_double" or metric.WhichOneof("data") in ("gauge", "sum")):
                setattr(point, name, rng.choice([float("nan"), float("inf"), -1e308]))


STRUCTURED: dict[str, Callable[[random.Random, Any], None]] = {"traces": _span_mutation, "logs": _log_mutation,
                                                               "metrics": _metric_mutation}


def mutate_structure(rng: random.Random, signal: str, req: Any) -> bytes:
    """Extreme values in valid fields; sometimes also wire-level damage (deep nesting, invalid UTF-8)."""
    for _ in range(rng.randint(1, 3)):
        STRUCTURED[signal](rng, req)
    body = req.SerializeToString()
    choice = rng.randrange(5)
    if choice == 0:  # a resource attribute nested beyond the parser's limit, appended on the wire
        depth = rng.choice([20, 30, 33, 40, 60])
        resource = _ld(1, _ld(1, _deep_kv(depth)))
        body = _ld(1, resource + (_ld(3, b"http://schema/\xff") if rng.random() < 0.5 else b"")) + body
    elif choice == 1 and b"fuzz" in body:  # invalid UTF-8 in a string field
        body = body.replace(b"fuzz", b"f\xffzz", 1)
    elif choice == 2:
        body = mutate_bytes(rng, body)
    return body


def fuzz_bodies(signal: str, count: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(f"{seed}-{signal}")
    for _ in range(count):
        request = BUILDERS[signal](rng)
        if rng.random() < STRUCTURED_SHARE:
            yield mutate_structure(rng, signal, request)
        else:
            yield mutate_bytes(rng, request.SerializeToString())


# --- the test ------------------------------------------------------------------------------------

class Sender:
    """One keep-alive HTTP connection and one gRPC channel to the collector; answers as status names."""

    def __init__(self, collector: CollectorProcess) -> None:
        self.collector = collector
        self.http = http.client.HTTPConnection("127.0.0.1", collector.http_port, timeout=30)
        self.channel = grpc.insecure_channel(collector.grpc_target)
        self.grpc = {s: self.channel.unary_unary(m, request_serializer=None, response_deserializer=None)
                     for s, (_, m) in PATHS.items()}

    def send(self, protocol: str, signal: str, body: bytes) -> str:
        if protocol == "grpc":
            try:
                self.grpc[signal](body, timeout=30)
                return "200"
            except grpc.RpcError as exc:
                return {grpc.StatusCode.INVALID_ARGUMENT: "400"}.get(exc.code(), str(exc.code()))
        for attempt in range(2):
            try:
                self.http.request("POST", PATHS[signal][0], body, {"Content-Type": "application/x-protobuf"})
                response = self.http.getresponse()
                response.read()
                return str(response.status)
            except (http.client.HTTPException, ConnectionError):
                self.http.close()  # the server closed the kept-alive connection: open another once
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.http.close()
        self.channel.close()


@pytest.fixture(scope="module")
def fuzz_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "data"
    data_dir.mkdir()
    proc = CollectorProcess(data_dir, env=ENV).start()
    yield proc
    assert proc.stop() == 0, proc.read_log()[-3000:]


def test_fuzzed_requests_never_stop_the_writer_and_good_spans_after_them_land(fuzz_collector: CollectorProcess) -> None:
    sender = Sender(fuzz_collector)
    answers: dict[str, int] = {}
    try:
        for signal in ("traces", "logs", "metrics"):
            for i, body in enumerate(fuzz_bodies(signal, FUZZ_PER_SIGNAL, SEED)):
                answer = sender.send("http" if i % HTTP_EVERY == 0 else "grpc", signal, body)
                answers[answer] = answers.get(answer, 0) + 1
        assert set(answers) <= {"200", "400"}, answers  # OTLP-correct answers only, never a 5xx
        assert answers.get("200", 0) > FUZZ_PER_SIGNAL, answers  # most mutations are salvaged and stored
        # Good spans after the fuzz, on the same (only) WAL shard: every one must land, exactly once.
        rng = random.Random(SEED)
        expected: set[str] = set()
        for i in range(20):
            req = _trace_request(rng, tag="after-fuzz")
            expected |= {s.trace_id.hex() + s.span_id.hex() for s in req.resource_spans[0].scope_spans[0].spans}
            assert sender.send("grpc" if i % 2 else "http", "traces", req.SerializeToString()) == "200"
    finally:
        sender.close()
    data_dir = fuzz_collector.data_dir
    landed = count_when(data_dir, "spans", len(expected), "name like 'after-fuzz-%'", timeout=60)
    assert landed == len(expected), fuzz_collector.read_log()[-3000:]
    keys = stored_span_keys(data_dir)
    assert all(keys[k] == 1 for k in expected)
    status, _ = http_get(fuzz_collector.http_url + "/healthz")
    assert status == 200
    assert "died (exit code" not in fuzz_collector.read_log()
    _, metrics = http_get(fuzz_collector.http_url + "/metrics")
    assert b"spanlake_writer_restarts_total" not in metrics
    # The WAL held only what the writer can convert: nothing needed setting aside.
    assert Quarantine(data_dir / "quarantine").entries() == [], fuzz_collector.read_log()[-3000:]
