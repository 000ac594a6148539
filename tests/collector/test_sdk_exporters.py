"""The stock OpenTelemetry SDK exporters (gRPC, HTTP/protobuf) send traces and logs; rows come back."""

from __future__ import annotations

import logging
import uuid

import pytest
from harness import CollectorProcess, count_when, query
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from spanlake.instrumentation import semconv as sc


def _span_exporter(protocol: str, collector: CollectorProcess):
    if protocol == "grpc":
        return GrpcSpanExporter(endpoint=collector.grpc_target, insecure=True)
    return HttpSpanExporter(endpoint=f"{collector.http_url}/v1/traces")


def _log_exporter(protocol: str, collector: CollectorProcess):
    if protocol == "grpc":
        return GrpcLogExporter(endpoint=collector.grpc_target, insecure=True)
    return HttpLogExporter(endpoint=f"{collector.http_url}/v1/logs")


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_spans_are_stored_with_genai_columns(collector: CollectorProcess, protocol: str) -> None:
    service = f"svc-{protocol}-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(resource=Resource.create({"service.name": service,
                                                        "deployment.environment.name": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(_span_exporter(protocol, collector)))
    tracer = provider.get_tracer("test.app", "1.2.3")
    with tracer.start_as_current_span("POST /api/chat", kind=SpanKind.SERVER,
                                      attributes={"user.id": "u-1", "app.feature": "ticket-summary"}) as root:
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={
            sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai",
            sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
            sc.GEN_AI_RESPONSE_ID: "chatcmpl-1", sc.GEN_AI_USAGE_INPUT_TOKENS: 12,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 7, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 2,
            sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",), sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.25,
            sc.GEN_AI_REQUEST_TEMPERATURE: 0.2}) as child:
            child.add_event("gen_ai.first_chunk", {"index": 0})
        with tracer.start_as_current_span("db.query") as failing:
            failing.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")

    assert count_when(collector.data_dir, "spans", 3, f"service_name = '{service}'") == 3
    rows = {r["name"]: r for r in query(collector.data_dir,
                                        f"select * from spans where trace_id = '{trace_id}'").to_pylist()}
    assert set(rows) == {"POST /api/chat", "chat gpt-4o-mini", "db.query"}
    llm, app, db = rows["chat gpt-4o-mini"], rows["POST /api/chat"], rows["db.query"]
    assert llm["parent_span_id"] == app["span_id"] and app["parent_span_id"] is None
    assert len(llm["span_id"]) == 16 and llm["span_id"] == llm["span_id"].lower()
    assert llm["kind"] == "CLIENT" and app["kind"] == "SERVER" and db["kind"] == "INTERNAL"
    assert (llm["operation"], llm["provider"], llm["request_model"], llm["response_model"]) == (
        "chat", "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert (llm["input_tokens"], llm["output_tokens"], llm["total_tokens"], llm["cached_input_tokens"]) == (12, 7, 19, 2)
    assert llm["ttft_s"] == pytest.approx(0.25) and llm["is_stream"] is True
    assert llm["finish_reasons"] == ["stop"] and llm["response_id"] == "chatcmpl-1"
    assert dict(llm["attributes"])[sc.GEN_AI_REQUEST_TEMPERATURE] == "0.2"
    assert llm["events"][0]["name"] == "gen_ai.first_chunk"
    assert llm["scope_name"] == "test.app" and llm["scope_version"] == "1.2.3"
    assert llm["environment"] == "test" and llm["service_name"] == service
    assert dict(llm["resource_attributes"])["service.name"] == service
    assert app["feature"] == "ticket-summary" and app["user_id"] == "u-1" and app["operation"] is None
    assert db["status_code"] == "ERROR" and db["status_message"] == "boom"
    assert llm["duration_ms"] >= 0 and llm["end_time"] >= llm["start_time"]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_logs_are_stored_with_trace_context(collector: CollectorProcess, protocol: str) -> None:
    marker = f"log-{protocol}-{uuid.uuid4().hex[:8]}"
    provider = LoggerProvider(resource=Resource.create({"service.name": "log-svc"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(_log_exporter(protocol, collector)))
    logger = logging.getLogger(f"test.{marker}")
    logger.propagate = False
    logger.addHandler(LoggingHandler(logger_provider=provider))
    tracer_provider = TracerProvider()
    with tracer_provider.get_tracer("t").start_as_current_span("op") as span:
        logger.warning("hello %s", marker, extra={"tenant": "acme"})
    provider.shutdown()

    assert count_when(collector.data_dir, "logs", 1, f"body = 'hello {marker}'") == 1
    row = query(collector.data_dir, f"select * from logs where body = 'hello {marker}'").to_pylist()[0]
    assert row["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert row["span_id"] == format(span.get_span_context().span_id, "016x")
    assert row["severity_text"] == "WARN" and row["service_name"] == "log-svc"
    assert dict(row["attributes"])["tenant"] == "acme"
