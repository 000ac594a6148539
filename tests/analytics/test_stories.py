"""The stories on a real team's quieter traffic, through a real collector and ``spanlake report``.

Nine backdated days of LLM calls are sent with the stock OpenTelemetry SDK (HTTP/protobuf exporter)
to a collector process; the collector prices them (genai-prices) and writes the lake; then the
``spanlake report --json`` command is asked for its findings as of the hour the traffic ends.

- ``reports``: a dozen calls an hour on gpt-4o-mini; for the last 3 hours its prompt v2 sends 6x the
  context: a per-request cost spike too thin for hourly buckets, found in pooled ones and named.
- ``summarise``: prompt ``summarise-ticket`` v2 replaced v1 30 h ago (before the 24 h window; still
  running) and doubles output length: a stream drift attributed to the version, and a before/after
  verdict (sequential, not randomised) that rolls back on cost.
- ``chat`` (busy) and ``search`` (4 calls an hour) share gpt-4o-mini with ``reports`` and are calm:
  no finding may name them.

Budget: about 30-60 s (most of it sending ~24k spans and one report).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from harness import CollectorProcess, count_when
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from spanlake.instrumentation import semconv as sc

UTC = dt.timezone.utc
ANCHOR = dt.datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
DAYS = 9
SPIKE_HOURS = 3
ROLLOUT_HOURS = 30


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("stories") / "data"
    data_dir.mkdir()
    collector = CollectorProcess(data_dir, env={"SPANLAKE_FLUSH_INTERVAL_S": "0.2"}).start()
    try:
        sent = _send_traffic(collector)
        assert count_when(data_dir, "spans", sent, timeout=90) == sent
        out = subprocess.run([sys.executable, "-m", "spanlake.ui.cli", "report", "--data-dir", str(data_dir),
                              "--json", "--now", ANCHOR.isoformat()],
                             capture_output=True, text=True, timeout=180, check=False)
        assert out.returncode == 0, out.stderr[-3000:]
        yield json.loads(out.stdout)
    finally:
        assert collector.stop() == 0


def _calls(rng: random.Random) -> Iterator[tuple[dt.datetime, dict[str, Any], float]]:
    """(start, GenAI attributes, duration s) of every call, hour by hour."""
    start = ANCHOR - dt.timedelta(days=DAYS)
    for hour in range(DAYS * 24):
        at = start + dt.timedelta(hours=hour)
        hours_left = DAYS * 24 - hour
        plan = [("chat", 60, "gpt-4o-mini", "chat", "v7", 600, 120),
                ("search", 4, "gpt-4o-mini", None, None, 400, 40)]
        spiking = hours_left <= SPIKE_HOURS
        plan.append(("reports", 12, "gpt-4o-mini", "report-writer", "v2" if spiking else "v1",
                     6000 if spiking else 1000, 50))
        rolled = hours_left <= ROLLOUT_HOURS
        plan.append(("summarise", 20, "gpt-4o", "summarise-ticket", "v2" if rolled else "v1", 500,
                     300 if rolled else 150))
        for feature, per_hour, model, prompt, version, input_tokens, output_tokens in plan:
            for _ in range(per_hour):
                attrs: dict[str, Any] = {
                    sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai",
                    sc.GEN_AI_REQUEST_MODEL: model, sc.GEN_AI_RESPONSE_MODEL: model,
                    sc.GEN_AI_USAGE_INPUT_TOKENS: int(input_tokens * rng.uniform(0.9, 1.1)),
                    sc.GEN_AI_USAGE_OUTPUT_TOKENS: int(output_tokens * rng.uniform(0.8, 1.2)),
                    sc.SPANLAKE_FEATURE: feature}
                if prompt:
                    attrs[sc.GEN_AI_PROMPT_NAME], attrs[sc.GEN_AI_PROMPT_VERSION] = prompt, version
                yield at + dt.timedelta(seconds=rng.uniform(0, 3599)), attrs, 0.8 * rng.uniform(0.98, 1.02)


def _send_traffic(collector: CollectorProcess) -> int:
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=f"{collector.http_url}/v1/traces", timeout=30), max_queue_size=40_000,
        max_export_batch_size=1000, schedule_delay_millis=200))
    tracer = provider.get_tracer("stories.app", "1.0")
    sent = 0
    for start, attrs, seconds in _calls(random.Random(13)):
        begin = int(start.timestamp() * 1e9)
        span = tracer.start_span(f"chat {attrs[sc.GEN_AI_REQUEST_MODEL]}", kind=SpanKind.CLIENT, attributes=attrs,
                                 start_time=begin)
        span.end(end_time=begin + int(seconds * 1e9))
        sent += 1
    assert provider.force_flush(120_000)
    provider.shutdown()
    return sent


def _findings(report: dict[str, Any], **match: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if all(v in f[k] for k, v in match.items())]


def test_low_volume_cost_spike_is_a_finding_named_after_its_feature(report: dict[str, Any]) -> None:
    spikes = _findings(report, key="anomaly:cost_per_request:feature:reports")
    assert len(spikes) == 1
    spike = spikes[0]
    assert spike["category"] == "cost_spike"
    assert "with prompt_version=v2" in spike["title"] and "in the 2 h from" in spike["evidence"]
    rows = [r for r in report["sections"]["anomalies"]
            if r["group"] == "reports" and r["metric"] == "cost_per_request" and r["bucket_hours"] == 2]
    last = max(rows, key=lambda r: r["bucket"])
    assert 4.0 < last["value"] / last["baseline_mean"] < 6.5  # about 5x: 6x the input tokens, same output
    # the shared model's move is named after the feature that moved it, not left on the model
    for f in _findings(report, key=":request_model:gpt-4o-mini"):
        assert "feature=reports" in f["title"], f


def test_replacing_prompt_version_is_a_drift_and_a_sequential_verdict(report: dict[str, Any]) -> None:
    drift = _findings(report, key="drift:output_drift:output_tokens:feature=summarise")
    assert len(drift) == 1 and drift[0]["category"] == "quality_regression"
    assert "since prompt_version v1 → v2 at" in drift[0]["title"]
    changed = (ANCHOR - dt.timedelta(hours=ROLLOUT_HOURS)).strftime("%Y-%m-%d %H:")
    assert changed in drift[0]["title"]  # began before the 24 h window; still reported while it lasts
    verdicts = [r for r in report["sections"]["prompt_verdicts"] if r["prompt_name"] == "summarise-ticket"]
    assert len(verdicts) == 1
    verdict = verdicts[0]
    assert (verdict["design"], verdict["control"], verdict["candidate"]) == ("sequential", "v1", "v2")
    assert verdict["reasons"].startswith("before/after, not randomised") and verdict["verdict"] == "roll back"
    # every v2 call against v1's week before v2's first call (that week's first hour is cut where the call fell)
    assert verdict["n_candidate"] == 20 * ROLLOUT_HOURS and abs(verdict["n_control"] - 20 * 24 * 7) <= 20
    rollback = _findings(report, key="prompt:summarise-ticket:v2")
    assert len(rollback) == 1 and rollback[0]["category"] == "cost_spike"  # only cost gates; length is info
    assert "not randomised" in rollback[0]["title"]


def test_calm_features_stay_silent(report: dict[str, Any]) -> None:
    assert report["failures"] == {}
    for f in report["findings"]:
        text = f"{f['key']} {f['title']}"
        assert "chat" not in text.replace("chat gpt", "") and "search" not in text, f
    named = {r["feature"] for r in report["sections"]["anomalies"]} | {r["group"] for r in report["sections"]["anomalies"]
                                                                      if r["dimension"] == "feature"}
    assert not named & {"chat", "search"}
