"""Behaviour across spans and signals: de-duplication, content stripping and search, the negative fixture,
resource identity, the content cap, unknown-model pricing."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from harness import CollectorProcess, count_when, http_post, query
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from replays import Lakes, rows
from spanlake.collector.attributes import AttributeDecoder
from spanlake.collector.content import CONTENT_MAX_CHARS
from spanlake.collector.convert import SpanBuilder
from spanlake.collector.normalize import GenAINormalizer
from spanlake.collector.storage.reader import open_snapshot, search_content
from spanlake.instrumentation import semconv as sc

ANTHROPIC_CALL_COST = 3.224e-05  # genai-prices: claude-3-5-haiku, 13 input (3 cached) + 6 output tokens
CONTENT_KEYS = (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS, sc.INPUT_VALUE,
                sc.OUTPUT_VALUE, sc.LANGFUSE_INPUT, sc.LANGFUSE_OUTPUT, sc.TRACELOOP_ENTITY_OUTPUT)


def _anthropic_sums(data: Path) -> dict[str, float]:
    [row] = rows(data, "select count(*) as spans, sum(input_tokens) as input, sum(output_tokens) as output, "
                       "sum(cost_usd) as cost from spans where provider = 'anthropic' and duplicate_of is null "
                       "and status_code <> 'ERROR'")
    return row


def test_one_call_seen_twice_counts_once(lakes: Lakes) -> None:
    # traceloop: SDK span beside the OpenLLMetry span (separate roots); openinference: SDK span as child;
    # langfuse: the two in different traces; the events-mode captures: OpenLLMetry spans without model, stream
    # flag or (non-streamed) response id. Two successful Anthropic calls each, 13 + 6 tokens.
    for capture in ("traceloop", "openinference", "langfuse", "otel-anthropic-events", "traceloop-events"):
        data = lakes.get(capture, "grpc")
        assert _anthropic_sums(data) == {"spans": 2, "input": 26, "output": 12,
                                         "cost": _approx(data, 2 * ANTHROPIC_CALL_COST)}, capture
        # both spans of each call stay visible
        [both] = rows(data, "select count(*) as n from spans where provider = 'anthropic' and status_code <> 'ERROR'")
        assert both["n"] == 4, capture


def _approx(data: Path, value: float) -> float:
    [row] = rows(data, "select sum(cost_usd) as c from spans where provider = 'anthropic' and duplicate_of is null")
    assert math.isclose(row["c"], value, rel_tol=1e-9)
    return float(row["c"])


def test_duplicate_points_at_a_kept_span(lakes: Lakes) -> None:
    for capture in ("traceloop", "openinference", "langfuse", "otel-anthropic-events", "traceloop-events"):
        data = lakes.get(capture, "http")
        bad = rows(data, "select d.span_id from spans d left join spans k on k.span_id = d.duplicate_of "
                         "where d.duplicate_of is not null and (k.span_id is null or k.duplicate_of is not null)")
        assert bad == [], capture
        # a pair never joins two different calls (the events captures hold two calls of one token shape)
        crossed = rows(data, "select d.span_id from spans d join spans k on k.span_id = d.duplicate_of "
                             "where d.response_id <> k.response_id")
        assert crossed == [], capture


def test_content_is_out_of_the_attributes_map(lakes: Lakes) -> None:
    keys = ", ".join(f"'{k}'" for k in CONTENT_KEYS)
    for capture in ("openinference", "langfuse", "openlit", "traceloop", "otel-genai-openai-1.3", "traceloop-events"):
        data = lakes.get(capture, "grpc")
        left = rows(data, f"select span_id, k from (select span_id, unnest(map_keys(attributes)) as k from spans) "
                          f"where k in ({keys}) or k like 'llm.input_messages.%' or k like 'llm.output_messages.%' "
                          f"or k like 'embedding.embeddings.%'")
        assert left == [], capture


def test_search_content_is_case_insensitive_substring(lakes: Lakes) -> None:
    data = lakes.get("otel-openai-v2-legacy", "grpc")
    with open_snapshot(data / "lake") as snap:
        found = search_content(snap, "HELLO FROM THE fake").to_pylist()
        assert sorted(r["span_id"][:8] for r in found) == ["43f41a68", "4c98207d", "4efc586b"]
        assert {r["source"] for r in found} == {"logs"}  # content of this emitter exists only as log records
        assert len(search_content(snap, "terse ASSISTANT").to_pylist()) == 3  # system instructions
        assert search_content(snap, "no such text").num_rows == 0


def test_events_mode_negative_fixture_invents_nothing(lakes: Lakes) -> None:
    data = lakes.get("traceloop-events", "grpc")
    # Only Python logging records arrived: stored as plain logs, no content joined from them.
    assert rows(data, "select count(*) as n from logs where event_name is not null") == [{"n": 0}]
    assert rows(data, "select source, count(*) as n from span_content group by source") == [{"source": "span", "n": 1}]
    llm = rows(data, "select output_chars, ttft_s from spans where operation = 'chat' and is_stream is distinct from true")
    assert llm and all(r == {"output_chars": None, "ttft_s": None} for r in llm)


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, str):
        return KeyValue(key=key, value=AnyValue(string_value=value))
    if isinstance(value, list):
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=v)
                                                                               for v in value])))
    assert isinstance(value, int)
    return KeyValue(key=key, value=AnyValue(int_value=value))


def _request(resource: dict[str, object], attrs: dict[str, object], name: str = "chat gpt-4o-mini",
             scope: str = "opentelemetry.instrumentation.genai.openai") -> ExportTraceServiceRequest:
    now = time.time_ns()
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(_kv(k, v) for k, v in resource.items())
    ss = rs.scope_spans.add()
    ss.scope.name = scope
    span = ss.spans.add(trace_id=bytes.fromhex("5a" * 16), span_id=now.to_bytes(8, "big"), name=name,
                        kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=now - 10**9, end_time_unix_nano=now)
    span.attributes.extend(_kv(k, v) for k, v in attrs.items())
    return request


def _send(collector: CollectorProcess, request: ExportTraceServiceRequest) -> None:
    status, _, _ = http_post(collector.http_url + "/v1/traces", request.SerializeToString(),
                             {"Content-Type": "application/x-protobuf"})
    assert status == 200


def test_service_name_fallbacks(collector: CollectorProcess) -> None:
    marker = f"rid-{time.time_ns()}"
    cases = [({sc.SERVICE_NAME: "unknown_service:python", sc.OPENINFERENCE_PROJECT_NAME: "proj-x"}, "proj-x", None),
             ({sc.LANGFUSE_ENVIRONMENT: "staging"}, "staging", "staging"),
             ({sc.SERVICE_NAME: "svc", sc.DEPLOYMENT_ENVIRONMENT: "prod"}, "svc", "prod")]
    for resource, _, _ in cases:
        _send(collector, _request(resource, {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_RESPONSE_ID: marker}))
    assert count_when(collector.data_dir, "spans", 3, f"response_id = '{marker}'") == 3
    got = query(collector.data_dir, f"select service_name, environment from spans where response_id = '{marker}' "
                                    f"order by start_time_unix_nano").to_pylist()
    assert got == [{"service_name": s, "environment": e} for _, s, e in cases]


def test_content_is_capped_with_a_marker(collector: CollectorProcess) -> None:
    text = "x" * (CONTENT_MAX_CHARS + 500)
    output = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": text}]}])
    _send(collector, _request({sc.SERVICE_NAME: "cap"}, {sc.GEN_AI_OPERATION_NAME: "chat",
                                                          sc.GEN_AI_OUTPUT_MESSAGES: output}))
    assert count_when(collector.data_dir, "span_content", 1, "service_name = 'cap'") == 1
    [row] = query(collector.data_dir, "select output_messages, truncated from span_content "
                                      "where service_name = 'cap'").to_pylist()
    stored = json.loads(row["output_messages"])[0]["parts"][0]["content"]
    assert stored == "x" * CONTENT_MAX_CHARS + sc.SPANLAKE_CONTENT_TRUNCATED_MARKER.format(dropped=500)
    assert row["truncated"] is True
    [span] = query(collector.data_dir, "select output_chars from spans where service_name = 'cap'").to_pylist()
    assert span == {"output_chars": len(text)}  # measured before the cap


def test_unknown_model_gets_null_cost_and_is_counted() -> None:
    normalizer = GenAINormalizer()
    request = _request({}, {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai",
                            sc.GEN_AI_REQUEST_MODEL: "no-such-model-7", sc.GEN_AI_USAGE_INPUT_TOKENS: 5,
                            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 2})
    builder = SpanBuilder(AttributeDecoder(65536, 8), 10**12, normalizer)
    builder.add_request(request, time.time_ns())
    [row] = builder.take().select(["operation", "input_tokens", "cost_usd", "cost_source"]).to_pylist()
    assert row == {"operation": "chat", "input_tokens": 5, "cost_usd": None, "cost_source": None}
    assert normalizer.counters() == {"genai_unpriced": 1}


def test_finish_reasons_are_stored_in_the_semconv_enum() -> None:
    # Anthropic, Gemini (upper case), OpenAI tool calls, Langfuse's JSON quoting; a reason without an
    # equivalent is kept. The raw values stay in the attributes map.
    sent = [["end_turn"], ["MAX_TOKENS"], ["tool_calls", "stop"], ['"stop"'], ["refusal"]]
    builder = SpanBuilder(AttributeDecoder(65536, 8), 10**12, GenAINormalizer())
    for reasons in sent:
        builder.add_request(_request({}, {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "anthropic",
                                          sc.GEN_AI_RESPONSE_FINISH_REASONS: reasons}), time.time_ns())
    table = builder.take()
    assert table.column("finish_reasons").to_pylist() == [["stop"], ["length"], ["tool_call", "stop"], ["stop"],
                                                          ["refusal"]]
    raw = [dict(m)[sc.GEN_AI_RESPONSE_FINISH_REASONS] for m in table.column("attributes").to_pylist()]
    assert [json.loads(r) for r in raw] == sent


def test_content_json_that_the_fast_parser_refuses_is_still_stored() -> None:
    # NaN literals are refused by orjson; Python's json reads them, and the stored text is valid JSON (null).
    # orjson reads an integer beyond 64 bits as a float: pinned here, as the one precision it gives up.
    # Text that is not JSON at all is kept as a text part.
    normalizer = GenAINormalizer()
    builder = SpanBuilder(AttributeDecoder(65536, 8), 10**12, normalizer)
    inputs = ['[{"role": "user", "content": "hi", "score": NaN}]',
              '[{"role": "user", "parts": [{"type": "blob", "size": 123456789012345678901234567890}]}]',
              "plain words, not JSON"]
    for text in inputs:
        builder.add_request(_request({}, {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_INPUT_MESSAGES: text}),
                            time.time_ns())
    builder.take()
    stored = [json.loads(v) for v in normalizer.content.take().column("input_messages").to_pylist()]
    assert stored[0] == [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    assert stored[1] == [{"role": "user", "parts": [{"type": "blob", "size": 1.2345678901234568e29}]}]
    assert stored[2] == [{"role": "user", "parts": [{"type": "text", "content": "plain words, not JSON"}]}]
