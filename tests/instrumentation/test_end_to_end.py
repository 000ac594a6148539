"""End to end: an app instrumented with one line, configured only by the standard OTEL_* variables,
calls the real openai and anthropic clients; the collector stores exact, typed GenAI rows."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import CollectorProcess, count_when, query
from spanlake.instrumentation.fake_llm import FakeLLMServer

APP = textwrap.dedent('''
    import anthropic, openai
    import spanlake.instrumentation as sl
    from opentelemetry import trace, _logs, metrics

    sl.instrument(service_name="e2e-app")
    oa = openai.OpenAI(base_url=BASE + "/v1", api_key="k", max_retries=0)
    an = anthropic.Anthropic(base_url=BASE, api_key="k", max_retries=0)
    with sl.tags(feature="ticket-summary", prompt_name="summarise", prompt_version="v3", user_id="u-7"):
        oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                   max_tokens=32)
        stream = oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                            stream=True, stream_options={"include_usage": True})
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        an.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
        try:
            oa.chat.completions.create(model="fail-429", messages=[{"role": "user", "content": "hi"}])
        except openai.RateLimitError:
            pass
    trace.get_tracer_provider().force_flush()
    metrics.get_meter_provider().force_flush()
    _logs.get_logger_provider().force_flush()
''')


@pytest.fixture()
def lake(tmp_path: Path, fake_llm: FakeLLMServer) -> Iterator[Path]:
    data = tmp_path / "data"
    data.mkdir()
    collector = CollectorProcess(data, env={"SPANLAKE_FLUSH_INTERVAL_S": "0.2"}).start()
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.http_url,
           "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_METRIC_EXPORT_INTERVAL": "600000"}
    base = f"http://127.0.0.1:{fake_llm.server_address[1]}"
    done = subprocess.run([sys.executable, "-c", f"BASE = {base!r}\n" + APP], env=env, capture_output=True,
                          text=True, timeout=120)
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        count_when(data, "spans", 4, "service_name = 'e2e-app'", timeout=30)
        yield data
    finally:
        assert collector.stop() == 0


def test_instrumented_calls_arrive_as_typed_priced_rows(lake: Path) -> None:
    rows = query(lake, "select * from spans where service_name = 'e2e-app' order by start_time").to_pylist()
    chat, stream, claude, failed = rows
    for row in rows:
        assert row["kind"] == "CLIENT" and row["operation"] == "chat"
        assert (row["feature"], row["prompt_name"], row["prompt_version"], row["user_id"]) == (
            "ticket-summary", "summarise", "v3", "u-7")
    assert chat["name"] == "chat gpt-4o-mini" and chat["provider"] == "openai"
    assert chat["response_model"].startswith("gpt-4o-mini-") and chat["input_tokens"] > 0
    assert chat["is_stream"] is not True and chat["ttft_s"] is None
    assert chat["cost_usd"] is not None and chat["cost_usd"] > 0
    assert stream["is_stream"] is True and stream["ttft_s"] is not None and 0 < stream["ttft_s"] < stream["duration_ms"] / 1000
    assert stream["output_tokens"] > 0
    assert claude["provider"] == "anthropic" and claude["input_tokens"] >= (claude["cached_input_tokens"] or 0)
    assert claude["response_model"] and claude["output_tokens"] > 0 and claude["cost_usd"] is not None
    assert failed["status_code"] == "ERROR" and failed["error_type"] == "RateLimitError"
    # one span per call: the anthropic SDK's own tracing did not add a second one
    assert query(lake, "select count(*) as n from spans where duplicate_of is not null").to_pylist()[0]["n"] == 0
