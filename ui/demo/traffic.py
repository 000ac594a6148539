"""The demo's sample app: a helpdesk product whose features call OpenAI and Anthropic (the fake LLM),
instrumented with one `sl.instrument()` call, replaying the story live.

Each visit is one trace: the feature's SERVER span, the LLM call (streamed where the feature streams),
on a 429/5xx a fallback to the second provider in the same trace, then the user's thumbs
(`sl.record_feedback`) and, for a sample, an LLM-as-judge call whose score goes to
`sl.record_evaluation`. The story decides lengths, timings and failures; the fake LLM is told them in
its `x-fake-llm-*` headers (the silent model swap is the fake LLM's own doing: the app never knows).

Run as ``python -m spanlake.ui.demo.traffic live|backfill ...`` (stack.py does this).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import anthropic
import openai
import spanlake.instrumentation as sl
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from spanlake.instrumentation.fake_llm import FAIL_HEADER, TOKEN_DELAY_HEADER, TOKENS_HEADER, TTFT_HEADER
from spanlake.ui.demo.backfill import APP_SCOPE, backfill, resource
from spanlake.ui.demo.story import ANTHROPIC, JUDGE_EVALUATION, Call, Story, StoryConfig, Visit

logger = logging.getLogger(__name__)


@dataclass
class Providers:
    """The app's own OTel providers, exporting OTLP/HTTP to the collector."""

    tracer: TracerProvider
    meter: MeterProvider
    logger: LoggerProvider

    @classmethod
    def to(cls, endpoint: str) -> Providers:
        tracer = TracerProvider(resource=resource(False))
        tracer.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"),
                                                     schedule_delay_millis=500))
        meter = MeterProvider(resource=resource(False), metric_readers=[PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"), export_interval_millis=10_000)])
        logs = LoggerProvider(resource=resource(False))
        logs.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{endpoint}/v1/logs"),
                                                              schedule_delay_millis=500))
        return cls(tracer, meter, logs)

    def shutdown(self) -> None:
        for provider in (self.tracer, self.logger, self.meter):
            provider.shutdown()


class SampleApp:
    """The instrumented helpdesk backend: handles one visit at a time (call it from worker threads)."""

    def __init__(self, llm_url: str, providers: Providers) -> None:
        self.openai = openai.OpenAI(base_url=f"{llm_url}/v1", api_key="sk-demo", max_retries=0, timeout=120)
        self.anthropic = anthropic.Anthropic(base_url=llm_url, api_key="sk-ant-demo", max_retries=0, timeout=120)
        self.tracer = providers.tracer.get_tracer(APP_SCOPE)

    def handle(self, visit: Visit) -> str | None:
        """Serve one visit; returns the response id of the answer (None when every provider failed)."""
        with self.tracer.start_as_current_span(f"POST {visit.route}", kind=SpanKind.SERVER,
                                               attributes={"http.request.method": "POST",
                                                           "http.route": visit.route}) as root:
            with sl.tags(feature=visit.feature, prompt_name=visit.prompt_name,
                         prompt_version=visit.prompt_version, user_id=visit.user_id,
                         session_id=visit.session_id, **visit.tags):
                answer = self._answer(visit)
            if answer is None:
                root.set_status(Status(StatusCode.ERROR, "every provider failed"))
                return None
            if visit.feedback is not None:
                sl.record_feedback(answer, visit.feedback, "helpful" if visit.feedback else "not what I needed")
            if visit.judge is not None and visit.judge_score is not None:
                self._judge(visit, answer)
            return answer

    def _answer(self, visit: Visit) -> str | None:
        """The primary call, and on a provider error the fallback (the next call of the visit)."""
        for call in visit.calls:
            try:
                return self._call(visit, call, visit.system, visit.messages())
            except (openai.APIError, anthropic.APIError) as exc:
                logger.debug("%s failed on %s: %s", visit.feature, call.model, exc)
        return None

    def _judge(self, visit: Visit, answer: str) -> None:
        assert visit.judge is not None and visit.judge_score is not None
        with sl.tags(feature="eval-judge", prompt_name="judge-helpfulness", prompt_version="v1",
                     user_id=visit.user_id, session_id=visit.session_id):
            try:
                self._call(visit, visit.judge, "Rate the answer's helpfulness from 0 to 1.",
                           [{"role": "user", "content": f"Answer {answer}: rate it."}])
            except (openai.APIError, anthropic.APIError):
                return
        label = "pass" if visit.judge_score >= 0.7 else "fail"
        sl.record_evaluation(JUDGE_EVALUATION, visit.judge_score, label, "LLM-as-judge (gpt-4.1-mini)",
                             response_id=answer)

    def _call(self, visit: Visit, call: Call, system: str, messages: list[dict[str, str]]) -> str:
        headers = {TOKENS_HEADER: str(call.output_tokens), TTFT_HEADER: f"{call.ttft_s:g}",
                   TOKEN_DELAY_HEADER: f"{call.token_delay_s:g}"}
        if call.fail:
            headers[FAIL_HEADER] = call.fail
        if call.provider == ANTHROPIC:
            return self._anthropic(call, system, messages, visit.max_tokens, headers)
        return self._openai(call, system, messages, visit.max_tokens, headers)

    def _openai(self, call: Call, system: str, messages: list[dict[str, str]], max_tokens: int,
                headers: dict[str, str]) -> str:
        chat = [{"role": "system", "content": system}, *messages]
        if not call.stream:
            return self.openai.chat.completions.create(model=call.model, messages=chat, max_tokens=max_tokens,
                                                       extra_headers=headers).id
        response_id = ""
        for chunk in self.openai.chat.completions.create(
                model=call.model, messages=chat, max_tokens=max_tokens, stream=True,
                stream_options={"include_usage": True}, extra_headers=headers):
            response_id = chunk.id or response_id
        return response_id

    def _anthropic(self, call: Call, system: str, messages: list[dict[str, str]], max_tokens: int,
                   headers: dict[str, str]) -> str:
        if not call.stream:
            return self.anthropic.messages.create(model=call.model, system=system, messages=messages,
                                                  max_tokens=max_tokens, extra_headers=headers).id
        response_id = ""
        for event in self.anthropic.messages.create(model=call.model, system=system, messages=messages,
                                                    max_tokens=max_tokens, stream=True, extra_headers=headers):
            if event.type == "message_start":
                response_id = event.message.id
        return response_id


def run_live(app: SampleApp, visits: Iterator[Visit], live_start: dt.datetime, speed: float,
             stop: threading.Event, workers: int = 8, max_visits: int | None = None) -> int:
    """Replay ``visits`` in real time (story time runs ``speed`` times faster) until ``stop``.

    Visits run on ``workers`` daemon threads; when all are busy the schedule waits (no pile-up).
    Returns the number of visits started; waits up to 10 s for those in flight.
    """
    jobs: queue.Queue[Visit | None] = queue.Queue(maxsize=workers)
    threads = [threading.Thread(target=_worker, args=(app, jobs), daemon=True, name=f"visit-{i}")
               for i in range(workers)]
    for thread in threads:
        thread.start()
    started, t0 = 0, time.monotonic()
    for visit in visits:
        due = (visit.at - live_start).total_seconds() / speed
        if stop.wait(max(0.0, due - (time.monotonic() - t0))) or (max_visits is not None and started >= max_visits):
            break
        while not stop.is_set():
            try:
                jobs.put(visit, timeout=0.2)
                started += 1
                break
            except queue.Full:
                continue
        if stop.is_set():
            break
    while True:  # visits not yet begun are dropped; those in flight finish
        try:
            jobs.get_nowait()
        except queue.Empty:
            break
    for _ in threads:
        jobs.put(None)
    deadline = time.monotonic() + 10
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return started


def _worker(app: SampleApp, jobs: queue.Queue[Visit | None]) -> None:
    while (visit := jobs.get()) is not None:
        try:
            app.handle(visit)
        except Exception:  # one broken visit must not stop the demo app
            logger.exception("visit %s failed", visit.index)


# --- command line ---------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m spanlake.ui.demo.traffic", description=__doc__)
    p.add_argument("mode", choices=("live", "backfill"))
    p.add_argument("--collector", required=True, help="OTLP/HTTP base URL of the collector")
    p.add_argument("--llm", required=True, help="base URL of the fake LLM, e.g. http://127.0.0.1:8765")
    p.add_argument("--anchor", required=True, help="story anchor (ISO time, UTC)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--backfill-hours", type=float, default=48.0)
    p.add_argument("--rate", type=float, default=360.0, help="visits per story hour")
    p.add_argument("--latency-scale", type=float, default=1.0)
    p.add_argument("--from", dest="start", default=None, help="backfill: first story time (default anchor - backfill)")
    p.add_argument("--until", default=None, help="backfill: story time to stop at (default the anchor)")
    p.add_argument("--speed", type=float, default=1.0, help="live: story seconds per real second")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--duration", type=float, default=None, help="live: stop after this many real seconds")
    return p


def story_config(args: argparse.Namespace) -> StoryConfig:
    return StoryConfig(seed=args.seed, anchor=_time(args.anchor), backfill=dt.timedelta(hours=args.backfill_hours),
                       visits_per_hour=args.rate, latency_scale=args.latency_scale)


def _time(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level="WARNING", stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    story = Story(story_config(args))
    collector = args.collector.rstrip("/")
    if args.mode == "backfill":
        start = _time(args.start) if args.start else story.config.anchor - story.config.backfill
        end = _time(args.until) if args.until else story.config.anchor
        host, _, port = args.llm.split("//")[-1].partition(":")
        result = backfill(story, story.visits(start, end), collector, host, int(port or 80))
        print(f"backfill: {result.visits} visits, {result.spans} spans, {result.logs} feedback/evaluation "
              f"records from {start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC in {result.seconds:.1f}s", flush=True)
        return 0
    stop = _stop_on_signals()
    if args.duration is not None:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()
    providers = Providers.to(collector)
    sl.instrument(tracer_provider=providers.tracer, meter_provider=providers.meter,
                  logger_provider=providers.logger, capture_content=True)
    live_start = dt.datetime.now(dt.timezone.utc)
    print(f"sample app: live traffic from {live_start:%H:%M:%S} UTC at {args.speed:g}x", flush=True)
    try:
        started = run_live(SampleApp(args.llm.rstrip("/"), providers), story.visits(live_start, phase="live"),
                           live_start, args.speed, stop, args.workers)
    finally:
        sl.uninstrument()
        providers.shutdown()
    print(f"sample app: {started} visits", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

