"""A small lake with known answers for the UI tests: traffic of the last two days around the wall clock.

The UI asks about windows ending *now*, so the lake is built relative to the moment the tests run.
Known facts the tests assert: request counts, costs per feature, a trace with a 429 → fallback and a
captured conversation, a prompt version that doubles output length, a silent model swap, eval and
feedback scores, budgets and SLOs from a config file, and one firing plus one resolved alert.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analytics"))

from span_factory import eval_logs, spans, write_lake
from spanlake.analytics.alerts import Alert, update_alerts
from spanlake.collector.storage import schema
from spanlake.collector.storage.lake_writer import LakeWriter
from spanlake.instrumentation import semconv as sc

UTC = dt.timezone.utc
KNOWN_TRACE = "0af7651916cd43dd8448eb211c80319c"
QUESTION = "What is the capital of France?"
ANSWER = "Paris is the capital of France."
CHAT_CALLS, SEARCH_CALLS = 240, 60  # in the last 24 h, service web-api
CHAT_COST, SEARCH_COST = 0.01, 0.002
WORKER_CALLS = 40  # service worker, feature summarise, last 24 h
RATE_LIMITED = 12  # chat calls failing with 429 in the last 24 h
CONFIG = """
[[budgets]]
name = "all-daily"
period = "day"
soft_usd = 2.0
hard_usd = 10.0

[[budgets]]
name = "chat-monthly"
period = "month"
hard_usd = 100.0
feature = "chat"

[[slo]]
name = "chat-p99"
metric = "duration_p99"
max = 30.0
window = "24h"
"""


@dataclass(frozen=True)
class KnownLake:
    data_dir: Path
    config: Path
    now: dt.datetime
    trace_start: dt.datetime

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def requests_24h(self) -> int:
        """LLM calls in the default 24 h window over all services (the known trace adds two)."""
        return CHAT_CALLS + SEARCH_CALLS + WORKER_CALLS + 2


def _times(now: dt.datetime, n: int, hours_back: float, hours_span: float, rng: np.random.Generator) -> np.ndarray:
    start = now - dt.timedelta(hours=hours_back)
    offsets = np.sort(rng.uniform(0, hours_span * 3600, n))
    return np.array([start + dt.timedelta(seconds=float(s)) for s in offsets], dtype=object)


def _traffic(now: dt.datetime, rng: np.random.Generator) -> list[pa.Table]:
    """Yesterday's baseline and today's traffic: v2 of the 'answer' prompt doubles output length."""
    tables = []
    for day, hours_back in (("baseline", 47.5), ("current", 23.5)):
        n = CHAT_CALLS
        current = day == "current"
        version = np.where(np.arange(n) % 2 == 0, "v1", "v2") if current else np.array(["v1"] * n)
        out = rng.integers(100, 140, n) * np.where(version == "v2", 2, 1)
        failed = np.zeros(n, bool)
        if current:
            failed[rng.choice(n, RATE_LIMITED, replace=False)] = True
        # The silent swap: today half of gpt-4o's calls are answered by a new snapshot.
        response = np.where(current & (np.arange(n) >= n // 2), "gpt-4o-2025-01-01", "gpt-4o-2024-08-06")
        tables.append(spans(n, _times(now, n, hours_back, 23.0, rng), seed=1 if current else 2,
                            service_name="web-api", feature="chat", request_model="gpt-4o",
                            response_model=response, prompt_name="answer", prompt_version=version,
                            output_tokens=out, output_chars=out * 4, cost_usd=np.full(n, CHAT_COST),
                            ttft_s=rng.uniform(0.2, 0.6, n), is_stream=True,
                            user_id=np.where(np.arange(n) % 3 == 0, "alice", "bob"),
                            session_id=[f"s-{i % 10}" for i in range(n)],
                            status_code=np.where(failed, "ERROR", "UNSET"),
                            error_type=np.where(failed, "RateLimitError", None),
                            http_status=np.where(failed, 429, 200),
                            status_message=np.where(failed, "Rate limit reached for gpt-4o in org-42. Try again "
                                                            "in 20s.", None)))
    tables.append(spans(SEARCH_CALLS, _times(now, SEARCH_CALLS, 23.5, 23.0, rng), seed=3, service_name="web-api",
                        feature="search", request_model="gpt-4o-mini-2024-07-18",
                        response_model="gpt-4o-mini-2024-07-18", cost_usd=np.full(SEARCH_CALLS, SEARCH_COST),
                        user_id="carol", tags=[[("team", "growth")]] * SEARCH_CALLS))
    tables.append(spans(WORKER_CALLS, _times(now, WORKER_CALLS, 23.5, 23.0, rng), seed=4, service_name="worker",
                        feature="summarise", provider="anthropic", request_model="claude-sonnet-4-5-20250929",
                        response_model="claude-sonnet-4-5-20250929"))
    return tables


def _known_trace(start: dt.datetime) -> pa.Table:
    """POST /chat → a 429 from openai → the same question answered by anthropic."""
    ids = ["b7ad6b7169203331", "00f067aa0ba902b7", "53995c3f42cd8ad8"]
    times = np.array([start, start + dt.timedelta(milliseconds=20), start + dt.timedelta(milliseconds=400)],
                     dtype=object)
    return spans(3, times, trace_id=[KNOWN_TRACE] * 3, span_id=ids, parent_span_id=[None, ids[0], ids[0]],
                 name=["POST /chat", "chat gpt-4o", "chat claude-sonnet-4-5"], kind=["SERVER", "CLIENT", "CLIENT"],
                 duration_ms=np.array([2400.0, 350.0, 1900.0]), service_name="web-api",
                 operation=[None, "chat", "chat"], provider=[None, "openai", "anthropic"],
                 request_model=[None, "gpt-4o", "claude-sonnet-4-5-20250929"],
                 response_model=[None, None, "claude-sonnet-4-5-20250929"], input_tokens=[None, 12, 12],
                 output_tokens=[None, 0, 8], cost_usd=[None, None, 0.0042], ttft_s=[None, None, 0.31],
                 feature=[None, "chat", "chat"], user_id="dave", session_id="s-known",
                 status_code=["UNSET", "ERROR", "OK"], error_type=[None, "RateLimitError", None],
                 http_status=[None, 429, 200], status_message=[None, "Rate limit reached", None],
                 attributes=[[("http.route", "/chat")], [("server.address", "api.openai.com")],
                             [("server.address", "api.anthropic.com")]])


def _content(start: dt.datetime, span_id: str) -> pa.Table:
    messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": QUESTION}]}])
    output = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}],
                          "finish_reason": "stop"}])
    system = json.dumps([{"type": "text", "content": "You are a concise geography tutor."}])
    row = {"trace_id": KNOWN_TRACE, "span_id": span_id, "time": start, "service_name": "web-api",
           "input_messages": messages, "output_messages": output, "system_instructions": system,
           "source": "span", "truncated": False, "dt": start.date()}
    target = schema.arrow_schema(schema.SPAN_CONTENT)
    return pa.Table.from_pylist([{f.name: row.get(f.name) for f in target}], schema=target)


def _scores(table: pa.Table, now: dt.datetime) -> list[pa.Table]:
    """A judge score and thumbs feedback on today's chat calls, plus feedback on the known trace."""
    span_ids = table.column("span_id").to_pylist()[:100]
    trace_ids = table.column("trace_id").to_pylist()[:100]
    times = table.column("start_time").to_pylist()[:100]
    rng = np.random.default_rng(5)
    return [eval_logs(span_ids, trace_ids, rng.uniform(0.5, 1.0, 100), times, "helpfulness"),
            eval_logs(span_ids, trace_ids, (rng.random(100) < 0.8).astype(float), times,
                      sc.GEN_AI_EVALUATION_USER_FEEDBACK),
            eval_logs(["53995c3f42cd8ad8"], [KNOWN_TRACE], [1.0], [now - dt.timedelta(hours=2)],
                      sc.GEN_AI_EVALUATION_USER_FEEDBACK)]


def _alerts(lake_dir: Path, now: dt.datetime) -> None:
    resolved = Alert("slo:old", "latency_spike", "warning", "SLO old breached", "p99 was 9 s", "stream responses",
                     "latency page", "slo")
    firing = Alert("errors:rate_limit:provider=openai", "outage", "critical", "rate_limit at 5% (provider=openai)",
                   "12 of 240 calls in the window", "fail over to the fallback provider/model",
                   "result tables error_classes, failure_patterns", "errors")
    update_alerts(lake_dir, [resolved], now - dt.timedelta(hours=3))
    update_alerts(lake_dir, [firing], now - dt.timedelta(hours=1))


def build_known_lake(data_dir: Path) -> KnownLake:
    """Write the known lake under ``data_dir/lake`` and its config file; returns where things are."""
    now = dt.datetime.now(UTC)
    rng = np.random.default_rng(0)
    lake_dir = data_dir / "lake"
    traffic = _traffic(now, rng)
    trace_start = (now - dt.timedelta(hours=2)).replace(microsecond=0)
    write_lake(lake_dir, [*traffic, _known_trace(trace_start)], _scores(traffic[1], now))
    LakeWriter(lake_dir).append(schema.SPAN_CONTENT, _content(trace_start, "53995c3f42cd8ad8"), 100)
    _alerts(lake_dir, now)
    config = data_dir / "spanlake.toml"
    config.write_text(CONFIG)
    return KnownLake(data_dir, config, now, trace_start)
