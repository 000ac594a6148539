"""Real captured payloads replayed over both protocols, and OTLP/JSON per the specification."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from harness import PEER_SPANS, REPLAY_TOOL, CollectorProcess, count_when, http_post, query

CAPTURES = ["otel-openai-v2-latest", "traceloop", "openinference"]
SERVICES = {"traces": "opentelemetry.proto.collector.trace.v1.TraceService",
            "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
            "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService"}


def _load_replay_tool():
    spec = importlib.util.spec_from_file_location("replay_fixtures", REPLAY_TOOL)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def fresh(tmp_path: Path) -> Iterator[CollectorProcess]:
    data = tmp_path / "data"
    data.mkdir()
    proc = CollectorProcess(data, env={"SPANLAKE_FLUSH_INTERVAL_S": "0.2"}).start()
    yield proc
    assert proc.stop() == 0


def _expected_counts(capture: str) -> dict[str, int]:
    counts = {"traces": 0, "logs": 0}
    for decoded in sorted((PEER_SPANS / capture).glob("*-traces.decoded.json")):
        doc = json.loads(decoded.read_text())
        counts["traces"] += sum(len(ss.get("spans", [])) for rs in doc["resourceSpans"] for ss in rs["scopeSpans"])
    for decoded in sorted((PEER_SPANS / capture).glob("*-logs.decoded.json")):
        doc = json.loads(decoded.read_text())
        counts["logs"] += sum(len(sl.get("logRecords", [])) for rl in doc["resourceLogs"] for sl in rl["scopeLogs"])
    return counts


def _replay_grpc(collector: CollectorProcess, capture: str) -> None:
    tool = _load_replay_tool()
    rewriter = tool.Rewriter(shift=True, fresh=True)
    with grpc.insecure_channel(collector.grpc_target) as channel:
        for path in tool.collect([str(PEER_SPANS / capture)]):
            _, signal, _ext = tool.NAME_RE.match(Path(path).name).groups()
            body = rewriter.rewrite(signal, Path(path).read_bytes())
            export = channel.unary_unary(f"/{SERVICES[signal]}/Export", request_serializer=None,
                                         response_deserializer=None)
            export(body, timeout=10)


def _replay_http(collector: CollectorProcess, capture: str) -> None:
    tool = REPLAY_TOOL
    done = subprocess.run([sys.executable, str(tool), str(PEER_SPANS / capture), "--endpoint", collector.http_url,
                           "--fresh-ids", "--shift-to-now", "--gzip"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("capture", CAPTURES)
def test_captures_replay_completely(fresh: CollectorProcess, capture: str, protocol: str) -> None:
    (_replay_grpc if protocol == "grpc" else _replay_http)(fresh, capture)
    expected = _expected_counts(capture)
    assert count_when(fresh.data_dir, "spans", expected["traces"]) == expected["traces"]
    assert count_when(fresh.data_dir, "logs", expected["logs"]) == expected["logs"]
    if (PEER_SPANS / capture / "0003-metrics.pb").exists() or capture == "traceloop":
        assert count_when(fresh.data_dir, "metric_points", 1) >= 1


def test_otel_v2_latest_genai_columns(fresh: CollectorProcess) -> None:
    _replay_http(fresh, "otel-openai-v2-latest")
    count_when(fresh.data_dir, "spans", 6)
    rows = query(fresh.data_dir, "select * from spans order by start_time").to_pylist()
    chats = [r for r in rows if r["name"] == "chat gpt-4o-mini"]
    assert len(chats) == 3
    first = chats[0]
    assert (first["operation"], first["provider"], first["request_model"], first["response_model"]) == (
        "chat", "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert (first["input_tokens"], first["output_tokens"], first["total_tokens"]) == (10, 6, 16)
    assert first["finish_reasons"] == ["stop"] and first["response_id"].startswith("chatcmpl-fake")
    assert first["output_chars"] == len("Hello from the fake server.")
    assert first["ttft_s"] is None  # this emitter reports no TTFT: none is invented
    failed = next(r for r in rows if r["name"] == "chat fail-429")
    assert failed["status_code"] == "ERROR" and failed["error_type"] == "RateLimitError"
    assert failed["output_tokens"] is None
    emb = next(r for r in rows if r["name"].startswith("embeddings"))
    assert emb["operation"] == "embeddings" and emb["input_tokens"] == 3
    app = next(r for r in rows if r["name"] == "POST /api/chat")
    assert (app["feature"], app["user_id"], app["session_id"]) == ("ticket-summary", "user-123", "sess-456")
    assert all(r["service_name"] == "fx-otel-openai-v2-latest" for r in rows)
    assert all(r["environment"] == "fixture" for r in rows)
    logs = query(fresh.data_dir, "select * from logs").to_pylist()
    assert {r["event_name"] for r in logs} == {"gen_ai.client.inference.operation.details"}
    assert {r["span_id"] for r in logs} <= {r["span_id"] for r in rows}


def _hex_json_request(service: str, n: int, snake: bool = False) -> dict[str, object]:
    span_key, trace_key = ("span_id", "trace_id") if snake else ("spanId", "traceId")
    trace_id = hashlib.md5(service.encode()).hexdigest()  # one trace per service: no de-duplication across tests
    spans = [{trace_key: trace_id, span_key: f"{i + 1:016x}", "name": f"{service}-{i}",
              "kind": 3, "startTimeUnixNano": str(1_795_000_000_000_000_000 + i),
              "endTimeUnixNano": 1_795_000_000_250_000_000 + i,  # numbers are accepted too
              "status": {"code": 2, "message": "failed"},
              "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}},
                             {"key": "flag", "value": {"boolValue": True}},
                             {"key": "list", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}}],
              "unknownFieldFromTheFuture": {"x": 1}} for i in range(n)]
    scope_key = "scope_spans" if snake else "scopeSpans"
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name",
                                                             "value": {"stringValue": service}}]},
                               scope_key: [{"scope": {"name": "json"}, "spans": spans}]}]}


@pytest.mark.parametrize("snake", [False, True])
def test_otlp_json_per_spec(collector: CollectorProcess, snake: bool) -> None:
    service = f"json-{'snake' if snake else 'camel'}"
    status, headers, body = http_post(collector.http_url + "/v1/traces",
                                      json.dumps(_hex_json_request(service, 3, snake)).encode(),
                                      {"Content-Type": "application/json"})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {}
    assert count_when(collector.data_dir, "spans", 3, f"service_name = '{service}'") == 3
    row = query(collector.data_dir, f"select * from spans where name = '{service}-0'").to_pylist()[0]
    assert row["trace_id"] == hashlib.md5(service.encode()).hexdigest() and row["span_id"] == "0000000000000001"
    assert row["kind"] == "CLIENT" and row["status_code"] == "ERROR" and row["duration_ms"] == pytest.approx(250)
    attrs = dict(row["attributes"])
    assert attrs["flag"] == "true" and json.loads(attrs["list"]) == ["a"] and row["input_tokens"] == 42


def test_otlp_json_bad_ids_rejected_partially(collector: CollectorProcess) -> None:
    doc = _hex_json_request("json-badid", 3)
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]  # type: ignore[index]
    spans[1]["spanId"] = "zz-not-hex"
    spans[2]["traceId"] = "abcd"
    status, _, body = http_post(collector.http_url + "/v1/traces", json.dumps(doc).encode(),
                                {"Content-Type": "application/json"})
    assert status == 200
    assert json.loads(body)["partialSuccess"]["rejectedSpans"] == "2"
    assert count_when(collector.data_dir, "spans", 1, "service_name = 'json-badid'") == 1


def test_otlp_json_logs_and_metrics(collector: CollectorProcess) -> None:
    logs = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "jl"}}]},
                              "scopeLogs": [{"logRecords": [{
                                  "observedTimeUnixNano": "1795000000000000000", "eventName": "gen_ai.choice",
                                  "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                                  "body": {"kvlistValue": {"values": [{"key": "index", "value": {"intValue": 0}}]}}}]}]}]}
    assert http_post(collector.http_url + "/v1/logs", json.dumps(logs).encode(),
                     {"Content-Type": "application/json"})[0] == 200
    metrics = {"resourceMetrics": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "jm"}}]},
               "scopeMetrics": [{"metrics": [{"name": "jm.requests", "unit": "1", "sum": {
                   "aggregationTemporality": 2, "isMonotonic": True,
                   "dataPoints": [{"asInt": "7", "timeUnixNano": "1795000000000000000"}]}}]}]}]}
    assert http_post(collector.http_url + "/v1/metrics", json.dumps(metrics).encode(),
                     {"Content-Type": "application/json"})[0] == 200
    assert count_when(collector.data_dir, "logs", 1, "service_name = 'jl'") == 1
    log = query(collector.data_dir, "select * from logs where service_name = 'jl'").to_pylist()[0]
    assert log["event_name"] == "gen_ai.choice" and json.loads(log["body"]) == {"index": 0}
    assert log["time"] is not None and log["span_id"] == "eee19b7ec3c1b174"
    assert count_when(collector.data_dir, "metric_points", 1, "service_name = 'jm'") == 1
    point = query(collector.data_dir, "select * from metric_points where service_name = 'jm'").to_pylist()[0]
    assert (point["name"], point["type"], point["value"], point["is_monotonic"]) == ("jm.requests", "sum", 7.0, True)
    assert point["aggregation_temporality"] == "CUMULATIVE"
