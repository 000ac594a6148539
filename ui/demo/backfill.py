"""History for the demo: the story's past visits as OTLP spans and log records with past timestamps.

The data takes the same path as live data (OTLP/HTTP to the collector, normalised and priced there),
so the analytics have baselines on the first start. Spans are built with the OTel SDK with explicit
start and end times and carry the attributes spanlake's instrumentation writes for the same call;
usage comes from the fake LLM's own `build_reply`, so history and live answers agree. The resource
carries ``spanlake.demo.backfill=true`` so synthetic history can always be told apart.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, Span, SpanKind, Status, StatusCode
from spanlake.instrumentation import semconv as sc
from spanlake.instrumentation.fake_llm import Reply, Swap, build_reply
from spanlake.instrumentation.telemetry import VERSION
from spanlake.ui.demo.story import (
    ANTHROPIC,
    JUDGE_EVALUATION,
    SERVICE,
    SWAP_TARGET,
    SWAP_VERBOSITY,
    SWAPPED_MODEL,
    Call,
    Story,
    Visit,
)

APP_SCOPE = "acme-helpdesk.app"
BACKFILL_RESOURCE_KEY = "spanlake.demo.backfill"
_ERRORS = {"429": ("RateLimitError", "Error code: 429 - Rate limit reached (fake-llm)"),
           "500": ("InternalServerError", "Error code: 500 - Internal server error (fake-llm)")}
_QUEUE = 1 << 18  # never drop: the whole history fits in the exporter queues


@dataclass(frozen=True)
class BackfillResult:
    visits: int
    spans: int
    logs: int
    seconds: float


def resource(backfill: bool) -> Resource:
    """The sample app's resource (the live app uses the same one without the backfill flag)."""
    attrs: dict[str, Any] = {sc.SERVICE_NAME: SERVICE, sc.DEPLOYMENT_ENVIRONMENT_NAME: "demo"}
    if backfill:
        attrs[BACKFILL_RESOURCE_KEY] = True
    return Resource.create(attrs)


class _Writer:
    """Turns visits into spans and log records on SDK providers that export to the collector."""

    def __init__(self, endpoint: str, llm_host: str, llm_port: int) -> None:
        self.tracer_provider = TracerProvider(resource=resource(True))
        self.tracer_provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=30), max_queue_size=_QUEUE,
            max_export_batch_size=2048, schedule_delay_millis=200))
        self.logger_provider = LoggerProvider(resource=resource(True))
        self.logger_provider.add_log_record_processor(BatchLogRecordProcessor(
            OTLPLogExporter(endpoint=f"{endpoint}/v1/logs", timeout=30), max_queue_size=_QUEUE,
            max_export_batch_size=2048, schedule_delay_millis=200))
        self.app = self.tracer_provider.get_tracer(APP_SCOPE)
        self.genai = self.tracer_provider.get_tracer(sc.GEN_AI_INSTRUMENTATION_SCOPE, VERSION)
        self.events = self.logger_provider.get_logger(sc.GEN_AI_INSTRUMENTATION_SCOPE, VERSION)
        self.server = {sc.SERVER_ADDRESS: llm_host, sc.SERVER_PORT: llm_port}
        self.spans = self.logs = 0

    def visit(self, story: Story, visit: Visit) -> None:
        """One trace: the feature's root span, its LLM call(s), then feedback and the judge."""
        start = _ns(visit.at)
        root = self.app.start_span(f"POST {visit.route}", kind=SpanKind.SERVER, start_time=start,
                                   attributes={"http.request.method": "POST", "http.route": visit.route})
        ctx = trace.set_span_in_context(root)
        t, answer = start + 2_000_000, None
        for call in visit.calls:
            span, reply, t = self._call(story, visit, call, ctx, t, visit.prompt_name, visit.prompt_version,
                                        visit.feature)
            if call.fail is None:
                answer = (span, reply)
                break
        if answer is not None and visit.feedback is not None:
            self._evaluation(sc.GEN_AI_EVALUATION_USER_FEEDBACK, visit.feedback, None,
                             "helpful" if visit.feedback else "not what I needed", answer, t + 5_000_000_000)
        if answer is not None and visit.judge is not None and visit.judge_score is not None:
            _, _, t = self._call(story, visit, visit.judge, ctx, t, "judge-helpfulness", "v1", "eval-judge")
            label = "pass" if visit.judge_score >= 0.7 else "fail"
            self._evaluation(JUDGE_EVALUATION, visit.judge_score, label, "LLM-as-judge (gpt-4.1-mini)",
                             answer, t)
        root.set_status(Status(StatusCode.OK if answer else StatusCode.ERROR))
        root.end(end_time=t + 3_000_000)
        self.spans += 1

    def _call(self, story: Story, visit: Visit, call: Call, ctx: Any, start: int, prompt_name: str,
              prompt_version: str, feature: str) -> tuple[Span, Reply, int]:
        swap = (Swap(SWAPPED_MODEL, SWAP_TARGET, 0.0, SWAP_VERBOSITY)
                if call.model == SWAPPED_MODEL and story.swapped(visit.at) else None)
        messages = visit.messages(text=False)
        prompt = "\n".join([visit.system, *(m["content"] for m in messages)])
        reply = build_reply(model=call.model, provider=call.provider, prompt=prompt, n_messages=len(messages),
                            max_tokens=visit.max_tokens, forced_tokens=call.output_tokens,
                            id_prefix="msg_" if call.provider == ANTHROPIC else "chatcmpl-",
                            split_cache=call.provider == ANTHROPIC, swap=swap)
        attrs: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.GEN_AI_OPERATION_CHAT, sc.GEN_AI_PROVIDER_NAME: call.provider,
            sc.GEN_AI_REQUEST_MODEL: call.model, sc.GEN_AI_REQUEST_MAX_TOKENS: visit.max_tokens,
            **self.server, sc.SPANLAKE_FEATURE: feature, sc.GEN_AI_PROMPT_NAME: prompt_name,
            sc.GEN_AI_PROMPT_VERSION: prompt_version, sc.USER_ID: visit.user_id, sc.SESSION_ID: visit.session_id,
            **{sc.SPANLAKE_TAG_PREFIX + k: v for k, v in visit.tags.items()},
        }
        if call.stream:
            attrs[sc.GEN_AI_REQUEST_STREAM] = True
        span = self.genai.start_span(f"chat {call.model}", context=ctx, kind=SpanKind.CLIENT, attributes=attrs,
                                     start_time=start)
        self.spans += 1
        if call.fail is not None:
            error_type, message = _ERRORS[call.fail]
            span.set_attribute(sc.ERROR_TYPE, error_type)
            span.set_status(Status(StatusCode.ERROR, f"{error_type}: {message}"))
            end = start + int(0.03 * 1e9)
            span.end(end_time=end)
            return span, reply, end + 1_000_000
        span.set_attributes(_response_attributes(call, reply))
        if call.stream:
            span.set_attribute(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, call.ttft_s)
            span.add_event(sc.EVENT_FIRST_CHUNK, timestamp=start + int(call.ttft_s * 1e9))
        end = start + int((call.ttft_s + reply.output_tokens * call.token_delay_s) * 1e9)
        span.end(end_time=end)
        return span, reply, end + 1_000_000

    def _evaluation(self, name: str, score: float, label: str | None, explanation: str,
                    answer: tuple[Span, Reply], at_ns: int) -> None:
        """What `sl.record_evaluation` emits, at a past time, linked to the answer's span."""
        span, reply = answer
        attrs: dict[str, Any] = {sc.GEN_AI_EVALUATION_NAME: name, sc.GEN_AI_EVALUATION_SCORE_VALUE: float(score),
                                 sc.GEN_AI_EVALUATION_EXPLANATION: explanation,
                                 sc.GEN_AI_RESPONSE_ID: reply.response_id}
        if label is not None:
            attrs[sc.GEN_AI_EVALUATION_SCORE_LABEL] = label
        context = trace.set_span_in_context(NonRecordingSpan(span.get_span_context()))
        self.events.emit(timestamp=at_ns, observed_timestamp=at_ns, context=context,
                         severity_number=SeverityNumber.INFO, event_name=sc.EVENT_EVALUATION_RESULT,
                         attributes=attrs)
        self.logs += 1

    def close(self) -> None:
        self.tracer_provider.force_flush(120_000)
        self.logger_provider.force_flush(120_000)
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()


def _response_attributes(call: Call, reply: Reply) -> dict[str, Any]:
    """Response attributes and usage as the openai / anthropic wrappers record them."""
    anthropic = call.provider == ANTHROPIC
    finish = {"stop": "end_turn", "length": "max_tokens"}[reply.finish_reason] if anthropic else reply.finish_reason
    attrs: dict[str, Any] = {
        sc.GEN_AI_RESPONSE_ID: reply.response_id, sc.GEN_AI_RESPONSE_MODEL: reply.info.version,
        sc.GEN_AI_RESPONSE_FINISH_REASONS: [finish], sc.GEN_AI_USAGE_INPUT_TOKENS: reply.input_tokens,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: reply.output_tokens + reply.reasoning,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: reply.cache_read,
    }
    if anthropic:
        attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = reply.cache_creation
    else:
        attrs[sc.GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = reply.fingerprint
        attrs[sc.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER] = "default"
    return attrs


def _ns(t: dt.datetime) -> int:
    return int(t.timestamp() * 1e9)


def backfill(story: Story, visits: Iterable[Visit], endpoint: str, llm_host: str = "127.0.0.1",
             llm_port: int = 8765) -> BackfillResult:
    """Send ``visits`` (from ``story``) to the collector at ``endpoint`` (OTLP/HTTP base URL)."""
    started = time.perf_counter()
    writer = _Writer(endpoint.rstrip("/"), llm_host, llm_port)
    count = 0
    try:
        for visit in visits:
            writer.visit(story, visit)
            count += 1
    finally:
        writer.close()
    return BackfillResult(count, writer.spans, writer.logs, time.perf_counter() - started)
