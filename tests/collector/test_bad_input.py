"""Every bad input gets the OTLP-correct answer, a log line, and never costs the good spans around it."""

from __future__ import annotations

import gzip
import json
import uuid
import zlib

import grpc
import pytest
from google.rpc import status_pb2
from harness import CollectorProcess, count_when, http_get, http_post, query
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from spanlake.collector.otlp_proto import _encode_varint

PB = {"Content-Type": "application/x-protobuf"}


def _ld(field: int, payload: bytes) -> bytes:
    return bytes([(field << 3) | 2]) + _encode_varint(len(payload)) + payload


def _span(tag: str, i: int, **kw: object) -> trace_pb2.Span:
    tid = uuid.uuid5(uuid.NAMESPACE_DNS, tag).bytes
    return trace_pb2.Span(trace_id=tid, span_id=(i + 1).to_bytes(8, "big"), name=f"{tag}-{i}",
                          start_time_unix_nano=1_795_000_000_000_000_000 + i,
                          end_time_unix_nano=1_795_000_000_500_000_000 + i, **kw)


def _request(spans: list[trace_pb2.Span], service: str = "bad-input") -> trace_service_pb2.ExportTraceServiceRequest:
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name", value=common_pb2.AnyValue(string_value=service))
    rs.scope_spans.add().spans.extend(spans)
    return req


def _names(collector: CollectorProcess, tag: str, expected: int) -> set[str]:
    count_when(collector.data_dir, "spans", expected, f"name like '{tag}-%'")
    return {r["name"] for r in query(collector.data_dir, f"select name from spans where name like '{tag}-%'").to_pylist()}


def _post(collector: CollectorProcess, body: bytes, headers: dict[str, str] = PB, path: str = "/v1/traces"):
    return http_post(collector.http_url + path, body, headers)


def test_malformed_protobuf_is_400_with_status_body(collector: CollectorProcess) -> None:
    status, headers, body = _post(collector, b"\xff\xff\xff not protobuf")
    assert status == 400 and headers["Content-Type"] == "application/x-protobuf"
    assert "undecodable" in status_pb2.Status.FromString(body).message


def test_invalid_json_is_400(collector: CollectorProcess) -> None:
    status, headers, body = _post(collector, b"{not json", {"Content-Type": "application/json"})
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert "not valid JSON" in json.loads(body)["message"]


def test_wrong_content_type_is_415(collector: CollectorProcess) -> None:
    status, _, _ = _post(collector, b"hello", {"Content-Type": "text/plain"})
    assert status == 415


def test_unknown_content_encoding_is_415(collector: CollectorProcess) -> None:
    status, _, _ = _post(collector, b"x", {**PB, "Content-Encoding": "br"})
    assert status == 415


def test_truncated_gzip_is_400(collector: CollectorProcess) -> None:
    body = gzip.compress(_request([_span("tgz", 0)]).SerializeToString())
    status, _, _ = _post(collector, body[: len(body) // 2], {**PB, "Content-Encoding": "gzip"})
    assert status == 400


def test_gzip_bomb_is_413_and_collector_survives(collector: CollectorProcess) -> None:
    bomb = gzip.compress(b"\0" * (80 * 1024 * 1024), compresslevel=9)  # 80 MiB inflated, ~80 KiB sent
    status, _, _ = _post(collector, bomb, {**PB, "Content-Encoding": "gzip"})
    assert status == 413
    assert http_get(collector.http_url + "/healthz")[0] == 200


def test_oversized_body_is_413(collector: CollectorProcess) -> None:
    status, _, _ = _post(collector, b"\0" * (65 * 1024 * 1024))
    assert status == 413


def test_gzip_and_deflate_bodies_are_accepted(collector: CollectorProcess) -> None:
    raw = _request([_span("gz", 0)]).SerializeToString()
    assert _post(collector, gzip.compress(raw), {**PB, "Content-Encoding": "gzip"})[0] == 200
    raw2 = _request([_span("gz", 1)]).SerializeToString()
    assert _post(collector, zlib.compress(raw2), {**PB, "Content-Encoding": "deflate"})[0] == 200
    assert _names(collector, "gz", 2) == {"gz-0", "gz-1"}


def test_invalid_ids_are_rejected_as_partial_success(collector: CollectorProcess) -> None:
    good = [_span("ids", 0), _span("ids", 1)]
    bad_trace = _span("ids", 2)
    bad_trace.trace_id = b"\x01" * 5
    bad_span = _span("ids", 3)
    bad_span.span_id = b"\0" * 8
    status, _, body = _post(collector, _request([good[0], bad_trace, good[1], bad_span]).SerializeToString())
    assert status == 200
    answer = trace_service_pb2.ExportTraceServiceResponse.FromString(body)
    assert answer.partial_success.rejected_spans == 2
    assert "invalid trace/span ids" in answer.partial_success.error_message
    assert _names(collector, "ids", 2) == {"ids-0", "ids-1"}


def test_non_utf8_strings_are_repaired_and_neighbours_kept(collector: CollectorProcess) -> None:
    spans = [_span("utf", i) for i in range(3)]
    spans[1].attributes.add(key="note", value=common_pb2.AnyValue(string_value="MARKER"))
    body = _request(spans).SerializeToString().replace(b"MARKER", b"MA\xffKER")
    status, _, resp = _post(collector, body)
    assert status == 200
    answer = trace_service_pb2.ExportTraceServiceResponse.FromString(resp)
    assert answer.partial_success.rejected_spans == 0 and "UTF-8" in answer.partial_success.error_message
    assert _names(collector, "utf", 3) == {"utf-0", "utf-1", "utf-2"}
    note = query(collector.data_dir, "select attributes['note'] as n from spans where name = 'utf-1'").to_pylist()
    assert note[0]["n"] == "MA\ufffdKER"


def test_huge_attribute_is_truncated_with_marker(collector: CollectorProcess) -> None:
    span = _span("huge", 0)
    span.attributes.add(key="big", value=common_pb2.AnyValue(string_value="x" * (10 * 1024 * 1024)))
    span.attributes.add(key="small", value=common_pb2.AnyValue(string_value="ok"))
    assert _post(collector, _request([span]).SerializeToString())[0] == 200
    assert _names(collector, "huge", 1) == {"huge-0"}
    row = query(collector.data_dir, "select attributes from spans where name = 'huge-0'").to_pylist()[0]
    attrs = dict(row["attributes"])
    assert len(attrs["big"]) < 70 * 1024 and "truncated" in attrs["big"]
    assert json.loads(attrs["spanlake.truncated"]) == ["big"] and attrs["small"] == "ok"


def test_deeply_nested_anyvalue_keeps_the_span(collector: CollectorProcess) -> None:
    leaf = common_pb2.AnyValue(string_value="leaf").SerializeToString()
    deep = leaf
    for _ in range(300):  # far past protobuf's recursion limit
        deep = _ld(5, _ld(1, deep))  # AnyValue.array_value -> ArrayValue.values
    moderately = leaf
    for _ in range(30):  # parses, but deeper than the stored depth limit
        moderately = _ld(5, _ld(1, moderately))
    span_bytes = _span("deep", 0).SerializeToString() + _ld(9, _ld(1, b"too_deep") + _ld(2, deep)) \
        + _ld(9, _ld(1, b"nested") + _ld(2, moderately))
    neighbour = _span("deep", 1).SerializeToString()
    res = common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value="deep")).SerializeToString()
    body = _ld(1, _ld(1, _ld(1, res)) + _ld(2, _ld(2, span_bytes) + _ld(2, neighbour)))
    status, _, resp = _post(collector, body)
    assert status == 200
    answer = trace_service_pb2.ExportTraceServiceResponse.FromString(resp)
    assert answer.partial_success.rejected_spans == 0
    assert _names(collector, "deep", 2) == {"deep-0", "deep-1"}
    attrs = dict(query(collector.data_dir, "select attributes from spans where name='deep-0'").to_pylist()[0]["attributes"])
    assert "dropped" in attrs["too_deep"]
    assert "depth limit" in attrs["nested"]


def test_truncated_protobuf_keeps_the_complete_spans(collector: CollectorProcess) -> None:
    body = _request([_span("cut", i) for i in range(5)]).SerializeToString()
    status, _, resp = _post(collector, body[:-20])
    assert status == 200
    answer = trace_service_pb2.ExportTraceServiceResponse.FromString(resp)
    assert answer.partial_success.rejected_spans >= 1
    assert _names(collector, "cut", 4) == {f"cut-{i}" for i in range(4)}


def test_bad_timestamps_are_repaired_and_marked(collector: CollectorProcess) -> None:
    zero = _span("clock", 0)
    zero.start_time_unix_nano = zero.end_time_unix_nano = 0
    backwards = _span("clock", 1)
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 10**9
    future = _span("clock", 2)
    future.start_time_unix_nano = 4_000_000_000_000_000_000  # year 2096
    future.end_time_unix_nano = future.start_time_unix_nano + 2 * 10**9
    assert _post(collector, _request([zero, backwards, future]).SerializeToString())[0] == 200
    assert _names(collector, "clock", 3) == {"clock-0", "clock-1", "clock-2"}
    rows = {r["name"]: r for r in query(collector.data_dir,
            "select name, duration_ms, start_time, attributes['spanlake.clock_adjusted'] as why, "
            "year(start_time) as y from spans where name like 'clock-%'").to_pylist()}
    assert "start_time missing" in rows["clock-0"]["why"] and rows["clock-0"]["y"] >= 2026
    assert rows["clock-1"]["duration_ms"] == 0 and "end before start" in rows["clock-1"]["why"]
    assert "future" in rows["clock-2"]["why"] and rows["clock-2"]["y"] < 2090
    assert rows["clock-2"]["duration_ms"] == pytest.approx(2000)


def test_empty_request_is_success(collector: CollectorProcess) -> None:
    status, _, body = _post(collector, b"")
    assert status == 200 and not trace_service_pb2.ExportTraceServiceResponse.FromString(body).HasField("partial_success")


def test_hundred_thousand_span_request(collector: CollectorProcess) -> None:
    spans = [_span("bulk", i, attributes=[common_pb2.KeyValue(key="i", value=common_pb2.AnyValue(int_value=i))])
             for i in range(100_000)]
    status, _, _ = _post(collector, gzip.compress(_request(spans).SerializeToString(), 1), {**PB, "Content-Encoding": "gzip"})
    assert status == 200
    assert count_when(collector.data_dir, "spans", 100_000, "name like 'bulk-%'", timeout=60) == 100_000


def test_grpc_malformed_is_invalid_argument_and_good_request_ok(collector: CollectorProcess) -> None:
    with grpc.insecure_channel(collector.grpc_target) as channel:
        raw = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                  request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as info:
            raw(b"\xff\xff\xff garbage", timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        bad = _span("grpcbad", 1)
        bad.span_id = b"\x01\x02"
        answer = stub.Export(_request([_span("grpcbad", 0), bad]), timeout=10)
        assert answer.partial_success.rejected_spans == 1
    assert _names(collector, "grpcbad", 1) == {"grpcbad-0"}


def test_unknown_path_is_404_and_prefixed_path_works(collector: CollectorProcess) -> None:
    assert _post(collector, b"", PB, "/v2/nothing")[0] == 404
    body = _request([_span("prefix", 0)]).SerializeToString()
    assert _post(collector, body, PB, "/api/public/otel/v1/traces")[0] == 200
    assert _names(collector, "prefix", 1) == {"prefix-0"}


def test_bad_requests_are_logged_one_line_each(collector: CollectorProcess) -> None:
    before = collector.read_log().count("http traces: 415")
    _post(collector, b"x", {"Content-Type": "text/csv"})
    _post(collector, b"x", {"Content-Type": "text/csv"})
    after = collector.read_log().count("http traces: 415")
    assert after - before == 2
