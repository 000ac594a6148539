"""Health, Prometheus metrics, bearer-token auth, backpressure answers, de-duplication of retries."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from harness import CollectorProcess, count_when, http_get, http_post, query
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

PB = {"Content-Type": "application/x-protobuf"}


def _request(name: str, n: int = 3) -> trace_service_pb2.ExportTraceServiceRequest:
    req = trace_service_pb2.ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    tid = uuid.uuid4().bytes
    now = time.time_ns()
    for i in range(n):
        ss.spans.append(trace_pb2.Span(trace_id=tid, span_id=(i + 1).to_bytes(8, "big"), name=name,
                                       start_time_unix_nano=now, end_time_unix_nano=now + 10))
    return req


@pytest.fixture()
def secured(tmp_path: Path) -> Iterator[CollectorProcess]:
    data = tmp_path / "data"
    data.mkdir()
    proc = CollectorProcess(data, extra_args=["--auth-token", "s3cret"]).start()
    yield proc
    assert proc.stop() == 0


def test_healthz_and_prometheus_metrics(collector: CollectorProcess) -> None:
    status, body = http_get(collector.http_url + "/healthz")
    assert status == 200 and b'"ok"' in body
    http_post(collector.http_url + "/v1/traces", _request("metrics-probe").SerializeToString(), PB)
    count_when(collector.data_dir, "spans", 3, "name = 'metrics-probe'")
    deadline = time.monotonic() + 15
    while True:  # the lake's size is measured a moment after start
        status, body = http_get(collector.http_url + "/metrics")
        text = body.decode()
        if "spanlake_lake_bytes" in text or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200
    for name in ("spanlake_received_total", "spanlake_accepted_total", "spanlake_rejected_total",
                 "spanlake_queue_bytes", "spanlake_flush_seconds_last", "spanlake_written_total",
                 "spanlake_lake_bytes", "spanlake_lake_files"):
        assert f"# TYPE {name}" in text
    accepted = [line for line in text.splitlines() if line.startswith('spanlake_accepted_total{signal="traces"}')]
    assert float(accepted[0].split()[-1]) >= 3


def test_bearer_token_on_both_protocols(secured: CollectorProcess) -> None:
    body = _request("auth").SerializeToString()
    status, headers, _ = http_post(secured.http_url + "/v1/traces", body, PB)
    assert status == 401 and headers.get("WWW-Authenticate") == "Bearer"
    assert http_post(secured.http_url + "/v1/traces", body, {**PB, "Authorization": "Bearer wrong"})[0] == 401
    assert http_post(secured.http_url + "/v1/traces", body, {**PB, "Authorization": "Bearer s3cret"})[0] == 200
    assert http_get(secured.http_url + "/healthz")[0] == 200  # health checks need no token
    with grpc.insecure_channel(secured.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Export(_request("auth-grpc"), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stub.Export(_request("auth-grpc"), timeout=10, metadata=(("authorization", "Bearer s3cret"),))
    assert count_when(secured.data_dir, "spans", 6) == 6


def test_overload_answers_503_retry_after_and_resource_exhausted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # A one-byte backlog cap: any request that arrives before the writers catch up is refused.
    proc = CollectorProcess(data, env={"SPANLAKE_MAX_BACKLOG_BYTES": "1", "SPANLAKE_FLUSH_INTERVAL_S": "0.5"}).start()
    try:
        big = _request("overload", 2000).SerializeToString()
        answers = [http_post(proc.http_url + "/v1/traces", big, PB) for _ in range(30)]
        refused = [a for a in answers if a[0] == 503]
        assert refused and refused[0][1]["Retry-After"] == "1"
        assert status_pb2.Status.FromString(refused[0][2]).code == 14
        with grpc.insecure_channel(proc.grpc_target) as channel:
            stub = trace_service_pb2_grpc.TraceServiceStub(channel)
            codes = []
            for _ in range(30):
                try:
                    stub.Export(_request("overload-grpc", 2000), timeout=10)
                    codes.append(grpc.StatusCode.OK)
                except grpc.RpcError as exc:
                    codes.append(exc.code())
                    details = dict(exc.trailing_metadata() or ()).get("grpc-status-details-bin")
                    status = status_pb2.Status.FromString(details)
                    retry = error_details_pb2.RetryInfo()
                    assert status.details[0].Unpack(retry) and retry.retry_delay.seconds == 1
            assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
        accepted = sum(1 for a in answers if a[0] == 200)
        assert count_when(data, "spans", accepted * 2000, "name = 'overload'", timeout=60) == accepted * 2000
    finally:
        assert proc.stop() == 0


def test_retried_request_is_stored_once(collector: CollectorProcess) -> None:
    body = _request("retried", 5).SerializeToString()
    for _ in range(3):  # a client that never saw the ack sends again
        assert http_post(collector.http_url + "/v1/traces", body, PB)[0] == 200
    count_when(collector.data_dir, "spans", 5, "name = 'retried'")
    time.sleep(1.0)  # give a wrongly stored duplicate time to show up
    assert query(collector.data_dir, "select count(*) as n from spans where name = 'retried'").to_pylist() == [{"n": 5}]
