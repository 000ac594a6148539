"""Fixtures for instrumentation tests: the real fake-llm server on 127.0.0.1:0, real SDK clients,
and in-memory OTel exporters injected through `sl.instrument(...)`."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest
import spanlake.instrumentation as sl
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spanlake.instrumentation.fake_llm import FakeLLMServer, serve

TTFT_S = 0.05


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Strip env vars that would change instrumentation or SDK behaviour."""
    import os

    for name in list(os.environ):
        if name.startswith(("OTEL_", "ANTHROPIC_", "OPENAI_", "SPANLAKE_")):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLMServer]:
    server = serve("127.0.0.1", 0, ttft_s=TTFT_S, token_delay_s=0.001, retry_after_s=2, hang_s=10)
    yield server
    server.shutdown()


@dataclass
class Telemetry:
    """In-memory sinks for one test."""

    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    logs: InMemoryLogRecordExporter
    tracer_provider: TracerProvider

    def finished(self) -> list[ReadableSpan]:
        gc.collect()
        return list(self.spans.get_finished_spans())

    def one_span(self) -> ReadableSpan:
        spans = self.finished()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def log_records(self) -> list[ReadableLogRecord]:
        return list(self.logs.get_finished_logs())

    def metric_points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        points: list[Any] = []
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points


@pytest.fixture
def instrumented() -> Iterator[Callable[..., Telemetry]]:
    """Factory: instrument with in-memory providers (kwargs go to `sl.instrument`); uninstrument after."""

    def factory(**kwargs: Any) -> Telemetry:
        spans, metrics, logs = InMemorySpanExporter(), InMemoryMetricReader(), InMemoryLogRecordExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        logger_provider = LoggerProvider()
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
        sl.instrument(
            "test-service",
            tracer_provider=tracer_provider,
            meter_provider=MeterProvider(metric_readers=[metrics]),
            logger_provider=logger_provider,
            **kwargs,
        )
        return Telemetry(spans, metrics, logs, tracer_provider)

    yield factory
    sl.uninstrument()


@pytest.fixture
def telemetry(instrumented: Callable[..., Telemetry]) -> Telemetry:
    """Instrumented with defaults (content capture off)."""
    return instrumented()


@pytest.fixture
def openai_client(fake_llm: FakeLLMServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_llm.url + "/v1", api_key="sk-test", max_retries=0, timeout=5)


@pytest.fixture
def async_openai_client(fake_llm: FakeLLMServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake_llm.url + "/v1", api_key="sk-test", max_retries=0, timeout=5)


@pytest.fixture
def anthropic_client(fake_llm: FakeLLMServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake_llm.url, api_key="sk-ant-test", max_retries=0, timeout=5)


@pytest.fixture
def async_anthropic_client(fake_llm: FakeLLMServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake_llm.url, api_key="sk-ant-test", max_retries=0, timeout=5)
