"""Setup and teardown: providers, uninstrument, zero-code entry point, app behaviour never changes."""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anthropic
import openai
import pytest
import spanlake.instrumentation as sl
from spanlake.instrumentation import semconv as sc
from spanlake.instrumentation.fake_llm import FakeLLMServer
from spanlake.instrumentation.instrumentor import SpanlakeInstrumentor

if TYPE_CHECKING:
    from conftest import Telemetry

PACKAGE_DIR = Path(sl.__file__).parent
BIN = Path(sys.executable).parent
MESSAGES = [{"role": "user", "content": "hi"}]


def test_uninstrument_restores_originals(instrumented: Any) -> None:
    importlib.import_module("openai.resources.responses")
    originals = (
        openai.resources.chat.completions.Completions.__dict__["create"],
        openai.resources.responses.AsyncResponses.__dict__["create"],
        anthropic.resources.messages.Messages.__dict__["stream"],
        anthropic._base_client.BaseClient.__dict__["_tracer"],
    )
    instrumented()
    assert openai.resources.chat.completions.Completions.__dict__["create"] is not originals[0]
    assert sl.is_instrumented()
    sl.uninstrument()
    assert not sl.is_instrumented()
    restored = (
        openai.resources.chat.completions.Completions.__dict__["create"],
        openai.resources.responses.AsyncResponses.__dict__["create"],
        anthropic.resources.messages.Messages.__dict__["stream"],
        anthropic._base_client.BaseClient.__dict__["_tracer"],
    )
    assert restored == originals


def test_instrument_twice_is_harmless(instrumented: Any, openai_client: openai.OpenAI) -> None:
    telemetry = instrumented()
    sl.instrument()  # warns, keeps the first configuration
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(telemetry.finished()) == 1


def test_libraries_filter(
    instrumented: Any, openai_client: openai.OpenAI, anthropic_client: anthropic.Anthropic
) -> None:
    telemetry = instrumented(libraries=["anthropic"])
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    anthropic_client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=MESSAGES)
    assert [s.attributes[sc.GEN_AI_PROVIDER_NAME] for s in telemetry.finished()] == ["anthropic"]


def test_instrumentation_error_is_logged_once_and_swallowed(
    instrumented: Any, openai_client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_redactor(text: str) -> str:
        raise ValueError("redactor bug")

    telemetry = instrumented(capture_content=True, redactor=broken_redactor)
    with caplog.at_level(logging.DEBUG, logger="spanlake.instrumentation"):
        for _ in range(2):
            result = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            assert isinstance(result, openai.types.chat.ChatCompletion)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "spanlake" in r.getMessage()]
    assert len(warnings) == 1
    assert len(telemetry.finished()) == 2  # spans still end


def test_exception_identity_preserved(telemetry: Telemetry, openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as raised:
        openai_client.chat.completions.create(model="fail-429", messages=MESSAGES)
    assert raised.value.status_code == 429 and raised.value.__traceback__ is not None


def test_entry_point_registered() -> None:
    (entry,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "spanlake"]
    assert entry.load() is SpanlakeInstrumentor


def test_no_gen_ai_literals_outside_semconv() -> None:
    pattern = re.compile(r"""["']gen_ai\.""")
    offenders = [
        str(p) for p in PACKAGE_DIR.rglob("*.py") if p.name != "semconv.py" and pattern.search(p.read_text())
    ]
    assert offenders == []


def _run(code: str, env: dict[str, str], *prefix: str) -> dict[str, Any]:
    script = textwrap.dedent(code)
    completed = subprocess.run(
        [*prefix, sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _env(fake_llm: FakeLLMServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ANTHROPIC_"))}
    # Exports go to the fake server, which answers 404 at once: no retry delay at exit.
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": fake_llm.url,
            "OTEL_METRIC_EXPORT_INTERVAL": "600000",
            "FAKE_URL": fake_llm.url,
            **extra,
        }
    )
    return env


def test_creates_otlp_providers_when_none_exist(fake_llm: FakeLLMServer) -> None:
    out = _run(
        """
        import json, sys
        from opentelemetry import trace
        import spanlake.instrumentation as sl
        sl.instrument(service_name="checkout")
        provider = trace.get_tracer_provider()
        exporter = provider._active_span_processor._span_processors[0]._batch_processor._exporter
        heavy = sorted(m for m in ("duckdb", "pyarrow", "streamlit", "sklearn", "grpc") if m in sys.modules)
        print(json.dumps({"service": provider.resource.attributes["service.name"],
                          "exporter": type(exporter).__module__, "heavy": heavy}))
    """,
        _env(fake_llm, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf"),
    )
    assert out == {
        "service": "checkout",
        "exporter": "opentelemetry.exporter.otlp.proto.http.trace_exporter",
        "heavy": [],
    }


def test_grpc_protocol_from_env(fake_llm: FakeLLMServer) -> None:
    out = _run(
        """
        import json
        from opentelemetry import trace
        import spanlake.instrumentation as sl
        sl.instrument()
        exporter = trace.get_tracer_provider()._active_span_processor._span_processors[0]._batch_processor._exporter
        print(json.dumps({"exporter": type(exporter).__module__}))
        sl.uninstrument()
    """,
        _env(fake_llm, OTEL_EXPORTER_OTLP_PROTOCOL="grpc", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9"),
    )
    assert out == {"exporter": "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"}


def test_never_replaces_app_global_provider(fake_llm: FakeLLMServer) -> None:
    out = _run(
        """
        import json, os, openai
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import spanlake.instrumentation as sl
        exporter = InMemorySpanExporter(); app_provider = TracerProvider()
        app_provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(app_provider)
        sl.instrument(service_name="checkout")
        client = openai.OpenAI(base_url=os.environ["FAKE_URL"] + "/v1", api_key="k", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        print(json.dumps({"same": trace.get_tracer_provider() is app_provider,
                          "spans": [s.name for s in exporter.get_finished_spans()]}))
    """,
        _env(fake_llm),
    )
    assert out == {"same": True, "spans": ["chat gpt-4o-mini"]}


def test_zero_code_opentelemetry_instrument(fake_llm: FakeLLMServer) -> None:
    out = _run(
        """
        import json, os, openai, anthropic
        from opentelemetry import trace
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        exporter = InMemorySpanExporter()
        trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
        client = openai.OpenAI(base_url=os.environ["FAKE_URL"] + "/v1", api_key="k", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        claude = anthropic.Anthropic(base_url=os.environ["FAKE_URL"], api_key="k", max_retries=0)
        claude.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        print(json.dumps([[s.name, s.instrumentation_scope.name] for s in exporter.get_finished_spans()]))
    """,
        _env(fake_llm, OTEL_SERVICE_NAME="zero-code"),
        str(BIN / "opentelemetry-instrument"),
    )
    # One span per call: the anthropic SDK's own span (a global provider exists here) is handed over.
    assert out == [
        ["chat gpt-4o-mini", sc.GEN_AI_INSTRUMENTATION_SCOPE],
        ["chat claude-haiku-4-5", sc.GEN_AI_INSTRUMENTATION_SCOPE],
    ]
