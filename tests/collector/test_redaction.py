"""Secrets never land in the lake: the stock OTel SDK exporters (gRPC, HTTP) send credentials in header
attributes, attribute values, span names, status messages, event attributes, log bodies and GenAI message
content (span attributes and content log events) to a real collector; no secret is in any lake file, the
markers are, and /metrics counts every redacted value. Plus the patterns themselves, positive and negative.

Time budget: about 30 s (one collector start, two protocols).
"""

from __future__ import annotations

import json
import logging
import random
import re
import string
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from harness import CollectorProcess, count_when, http_get, query
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from spanlake.collector.attributes import AttributeDecoder
from spanlake.collector.redaction import Redactor
from spanlake.instrumentation import semconv as sc

CUSTOM_PATTERN = r"acme-[0-9a-f]{32}"
ORDINARY = {"app.task": "task-abcdefghijklmnopqrstuvwxyz0123", "app.word": "skeleton", "app.short": "sk-1",
            "app.bearer": "the bearer of bad news brought no token", "app.lib": "sk-learn-compatible-estimator-kit"}
REDACTED_PER_EXPORT = 12  # the values the test below puts secrets in (see _send)


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    """A collector with one extra redaction pattern, as a config file would give it."""
    data_dir: Path = tmp_path_factory.mktemp("redact") / "data"
    data_dir.mkdir()
    proc = CollectorProcess(data_dir, env={"SPANLAKE_FLUSH_INTERVAL_S": "0.2",
                                           "SPANLAKE_REDACT_PATTERNS": json.dumps([CUSTOM_PATTERN])}).start()
    yield proc
    code = proc.stop()
    assert code == 0, proc.read_log()[-3000:]


def _token(rng: random.Random, n: int) -> str:
    """n random key characters, with a digit and an upper-case letter as real keys have."""
    return "Q7" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n - 2))


def _secrets(rng: random.Random) -> dict[str, str]:
    return {
        "header": f"Bearer {_token(rng, 40)}", "cookie": f"session={_token(rng, 32)}", "api_key": _token(rng, 32),
        "x_api_key": _token(rng, 32), "openai": f"sk-proj-{_token(rng, 48)}", "openai_name": f"sk-{_token(rng, 48)}",
        "status": f"Bearer {_token(rng, 30)}", "aws_event": "AKIA" + _token(rng, 16).upper(),
        "anthropic_log": f"sk-ant-api03-{_token(rng, 40)}", "content": f"sk-proj-{_token(rng, 40)}",
        "content_escaped": f"sk-{_token(rng, 40)}", "aws_log_event": "ASIA" + _token(rng, 16).upper(),
        "custom": "acme-" + "".join(rng.choice("0123456789abcdef") for _ in range(32)),
    }


def _exporters(protocol: str, collector: CollectorProcess) -> tuple[Any, Any]:
    if protocol == "grpc":
        return (GrpcSpanExporter(endpoint=collector.grpc_target, insecure=True),
                GrpcLogExporter(endpoint=collector.grpc_target, insecure=True))
    return (HttpSpanExporter(endpoint=f"{collector.http_url}/v1/traces"),
            HttpLogExporter(endpoint=f"{collector.http_url}/v1/logs"))


def _send(protocol: str, collector: CollectorProcess, service: str, s: dict[str, str]) -> tuple[str, str]:
    """One trace through the SDK: an LLM span full of secrets (8 values + 1 event), a log line (1), a GenAI
    content event (1) for a second LLM span, the custom pattern (1). Returns the two spans' ids."""
    span_exporter, log_exporter = _exporters(protocol, collector)
    resource = Resource.create({"service.name": service})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    tracer = tracer_provider.get_tracer("test.redaction")
    py_logger = logging.getLogger(f"test.redaction.{service}")
    py_logger.propagate = False
    py_logger.addHandler(LoggingHandler(logger_provider=logger_provider))
    messages = [{"role": "user", "parts": [{"type": "text", "content": f"my key is {s['content']}\n{s['content_escaped']}"}]}]
    with tracer.start_as_current_span(f"call {s['openai_name']}", kind=SpanKind.CLIENT, attributes={
        sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        "http.request.header.authorization": (s["header"],), "http.request.header.cookie": (s["cookie"],),
        "llm.api_key": s["api_key"], "http.request.header.x-api-key": (s["x_api_key"],),
        "app.note": f"retrying with {s['openai']} now", "app.ticket": f"ticket {s['custom']}",
        sc.GEN_AI_INPUT_MESSAGES: json.dumps(messages), **ORDINARY}) as span_a:
        span_a.add_event("retry", {"aws.key": s["aws_event"]})
        span_a.set_status(Status(StatusCode.ERROR, f"401 for {s['status']}"))
        py_logger.warning("using key %s", s["anthropic_log"])
    with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={
            sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai",
            sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini"}) as span_b:
        logger_provider.get_logger("test.redaction").emit(
            event_name=sc.EVENT_USER_MESSAGE, body={"content": f"here is {s['aws_log_event']}", "role": "user"})
    tracer_provider.shutdown()
    logger_provider.shutdown()
    ctx_a, ctx_b = span_a.get_span_context(), span_b.get_span_context()
    return format(ctx_a.span_id, "016x"), format(ctx_b.span_id, "016x")


def _metric(collector: CollectorProcess, name: str) -> float:
    status, body = http_get(f"{collector.http_url}/metrics")
    assert status == 200
    found = re.search(rf"^{name} (\S+)$", body.decode(), re.M)
    return float(found.group(1)) if found else 0.0


def _wait_metric(collector: CollectorProcess, name: str, at_least: float, timeout: float = 20.0) -> float:
    deadline = time.monotonic() + timeout
    value = _metric(collector, name)
    while value < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
        value = _metric(collector, name)
    return value


def _lake_texts(lake: Path) -> Iterator[tuple[Path, str]]:
    """Every lake file's raw bytes (as latin-1 text) and, for Parquet, every column's values decoded."""
    for path in sorted(p for p in lake.rglob("*") if p.is_file()):
        yield path, path.read_bytes().decode("latin-1")
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            for column in table.column_names:
                yield path, json.dumps(table.column(column).to_pylist(), default=str, ensure_ascii=False)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_secrets_never_land(collector: CollectorProcess, protocol: str) -> None:
    rng = random.Random(f"redact-{protocol}")
    secrets = _secrets(rng)
    before = _metric(collector, "spanlake_redacted_values_total")
    service = f"redact-{protocol}-{uuid.uuid4().hex[:6]}"
    span_a, span_b = _send(protocol, collector, service, secrets)

    assert count_when(collector.data_dir, "spans", 2, f"service_name = '{service}'") == 2
    assert count_when(collector.data_dir, "logs", 2, f"service_name = '{service}'") == 2
    both = f"span_id in ('{span_a}', '{span_b}')"
    assert count_when(collector.data_dir, "span_content", 2, both) == 2
    counted = _wait_metric(collector, "spanlake_redacted_values_total", before + REDACTED_PER_EXPORT)
    assert counted - before == REDACTED_PER_EXPORT

    # No secret anywhere: raw file bytes (Delta log stats included) and every decoded Parquet column.
    cores = [v.split(" ", 1)[-1].split("=", 1)[-1] for v in secrets.values()]
    for path, text in _lake_texts(collector.data_dir / "lake"):
        leaked = [c for c in cores if c in text]
        assert leaked == [], f"{path} holds {leaked}"

    a = query(collector.data_dir, f"select * from spans where span_id = '{span_a}'").to_pylist()[0]
    attrs = dict(a["attributes"])
    assert a["name"] == "call [REDACTED:openai-key]"
    assert a["status_message"] == "401 for [REDACTED:bearer-token]"
    assert attrs["http.request.header.authorization"] == "[REDACTED:authorization]"
    assert attrs["http.request.header.cookie"] == "[REDACTED:cookie]"
    assert attrs["llm.api_key"] == attrs["http.request.header.x-api-key"] == "[REDACTED:api-key]"
    assert attrs["app.note"] == "retrying with [REDACTED:openai-key] now"
    assert attrs["app.ticket"] == "ticket [REDACTED:custom]"
    assert json.loads(attrs[sc.SPANLAKE_REDACTED]) == [
        "http.request.header.authorization", "http.request.header.cookie", "llm.api_key",
        "http.request.header.x-api-key", "app.note", "app.ticket", sc.GEN_AI_INPUT_MESSAGES,
        sc.SPANLAKE_REDACTED_NAME, sc.SPANLAKE_REDACTED_STATUS_MESSAGE]
    assert {k: attrs[k] for k in ORDINARY} == ORDINARY  # ordinary text is stored as sent
    assert dict(a["events"][0]["attributes"])["aws.key"] == "[REDACTED:aws-access-key-id]"

    content = {r["span_id"]: r for r in query(
        collector.data_dir, f"select * from span_content where {both}").to_pylist()}
    parts = json.loads(content[span_a]["input_messages"])[0]["parts"]
    assert parts[0]["content"] == "my key is [REDACTED:openai-key]\n[REDACTED:openai-key]"
    logged = json.loads(content[span_b]["input_messages"])[0]["parts"]
    assert content[span_b]["source"] == "logs" and logged[0]["content"] == "here is [REDACTED:aws-access-key-id]"

    logs = query(collector.data_dir, f"select body, attributes from logs where service_name = '{service}' "
                                     "order by body").to_pylist()
    bodies = sorted(r["body"] for r in logs)
    assert bodies[0] == "using key [REDACTED:anthropic-key]"
    assert json.loads(bodies[1]) == {"content": "here is [REDACTED:aws-access-key-id]", "role": "user"}
    assert all(json.loads(dict(r["attributes"])[sc.SPANLAKE_REDACTED]) == [sc.SPANLAKE_REDACTED_BODY] for r in logs)


def test_long_attribute_keys_are_capped(collector: CollectorProcess) -> None:
    """A 2 MiB attribute key (sent whole before) is cut to max_attribute_key_bytes and listed as truncated."""
    service = f"longkey-{uuid.uuid4().hex[:6]}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(HttpSpanExporter(endpoint=f"{collector.http_url}/v1/traces")))
    with provider.get_tracer("t").start_as_current_span("op", attributes={"k" * (2 << 20): "v", "short": "s"}):
        pass
    provider.shutdown()
    assert count_when(collector.data_dir, "spans", 1, f"service_name = '{service}'") == 1
    attrs = dict(query(collector.data_dir, f"select attributes from spans where service_name = '{service}'"
                       ).to_pylist()[0]["attributes"])
    (long_key,) = [k for k in attrs if k.startswith("kkk")]
    assert long_key == "k" * 1024 + f"…[spanlake: truncated {(2 << 20) - 1024} bytes]"
    assert attrs[long_key] == "v" and attrs["short"] == "s"
    assert json.loads(attrs[sc.SPANLAKE_TRUNCATED]) == [long_key]


# --- the patterns, without a collector -----------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("sk-proj-" + "Ab1" * 10, "[REDACTED:openai-key]"),
    ("key=sk-" + "aB3" * 8 + " end", "key=[REDACTED:openai-key] end"),
    ("sk-ant-api03-" + "Zx9" * 9, "[REDACTED:anthropic-key]"),
    ("AKIAIOSFODNN7EXAMPLE", "[REDACTED:aws-access-key-id]"),
    ("id ASIAY34FZKBOKMUTVV7A.", "id [REDACTED:aws-access-key-id]."),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "Authorization: [REDACTED:bearer-token]"),
    ("bearer 0123456789abcdef0123", "[REDACTED:bearer-token]"),
    ('"a\\nsk-' + "Q1w" * 8 + '"', '"a\\n[REDACTED:openai-key]"'),  # JSON text: a newline escape, then a key
    ("two: sk-" + "A1b" * 7 + " and sk-" + "C2d" * 7, "two: [REDACTED:openai-key] and [REDACTED:openai-key]"),
])
def test_patterns_redact_keys(text: str, expected: str) -> None:
    redactor = Redactor()
    assert redactor.text(text) == expected
    assert redactor.redacted == 1


@pytest.mark.parametrize("text", [
    "task-abcdefghijklmnopqrstuvwxyz0123",  # holds "sk-" glued to a word
    "skeleton", "sk-1", "sk-short123", "the risk-" + "Abc1" * 6,
    "sk-learn-compatible-estimator-kit",  # hyphenated words: no digit, no capital
    "the bearer of bad news", "Bearer token", "bearer internationalization",
    "AKIAshort", "XAKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE1234",  # glued or too long for a key id
    "model gpt-4o-mini-2024-07-18 answered", "",
])
def test_patterns_leave_ordinary_text(text: str) -> None:
    redactor = Redactor()
    assert redactor.text(text) == text
    assert redactor.redacted == 0


@pytest.mark.parametrize(("key", "kind"), [
    ("http.request.header.authorization", "authorization"), ("http.request.header.Proxy-Authorization", "authorization"),
    ("http.request.header.cookie", "cookie"), ("http.response.header.set-cookie", "cookie"),
    ("openai.api_key", "api-key"), ("api_key", "api-key"), ("http.request.header.x-api-key", "api-key"),
    ("x-api-key", "api-key"), ("gen_ai.usage.input_tokens", None), ("http.request.header.accept", None),
    ("app.authorization_mode", None),
])
def test_credential_keys(key: str, kind: str | None) -> None:
    assert Redactor().key_kind(key) == kind


def test_extra_patterns_and_bad_ones() -> None:
    redactor = Redactor([r"acme-[0-9a-f]{8}", r"tenant-secret-\d+"])
    assert redactor.text("a acme-0badf00d b tenant-secret-42") == "a [REDACTED:custom] b [REDACTED:custom]"
    with pytest.raises(ValueError, match="not a valid regex"):
        Redactor(["(unclosed"])


def _kv(key: str, **value: Any) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(**value))


def test_decoder_redacts_before_capping_and_lists_keys() -> None:
    """A secret at the size cap's edge is replaced before the cut (a cut key would no longer match)."""
    decoder = AttributeDecoder(80, 8, Redactor(), max_key_bytes=16)
    secret = "sk-proj-" + "Ab1" * 20
    nested = common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=[
        _kv("authorization", string_value="Basic dXNlcjpwYXNz"), _kv("note", string_value=f"k {secret}")]))
    out = decoder.to_dict([_kv("a", string_value="x" * 49 + " " + secret), _kv("headers", kvlist_value=nested.kvlist_value),
                           _kv("plain", string_value="fine"), _kv("n", int_value=3)])
    assert out["a"] == "x" * 49 + " [REDACTED:openai-key]"
    assert out["headers"] == {"authorization": "[REDACTED:authorization]", "note": "k [REDACTED:openai-key]"}
    assert out[sc.SPANLAKE_REDACTED] == ["a", "headers"] and decoder.redacted == 3
    assert out["plain"] == "fine" and out["n"] == 3
    assert sc.SPANLAKE_TRUNCATED not in out


def test_redaction_off_stores_as_sent() -> None:
    decoder = AttributeDecoder(65536, 8, None)
    out = decoder.to_dict([_kv("http.request.header.authorization", string_value="Bearer " + "Ab1" * 10)])
    assert out == {"http.request.header.authorization": "Bearer " + "Ab1" * 10} and decoder.redacted == 0


def test_redaction_settings(tmp_path: Path) -> None:
    """On by default; extra patterns from the config file (a TOML list) or the environment (a JSON list)."""
    from spanlake.collector.settings import Settings, load_settings

    assert Settings().redact is True and Settings().redact_patterns == ()
    config = tmp_path / "spanlake.toml"
    config.write_text('redact_patterns = ["acme-[0-9a-f]{32}", "tenant-\\\\d+"]\n')
    assert load_settings({}, {}, config).redact_patterns == ("acme-[0-9a-f]{32}", r"tenant-\d+")
    env = {"SPANLAKE_REDACT": "false", "SPANLAKE_REDACT_PATTERNS": '["x-[0-9]+"]'}
    loaded = load_settings({}, env, config)
    assert loaded.redact is False and loaded.redact_patterns == ("x-[0-9]+",)
    with pytest.raises(ValueError, match="not a valid regex"):
        load_settings({}, {"SPANLAKE_REDACT_PATTERNS": '["(open"]'}, config)
