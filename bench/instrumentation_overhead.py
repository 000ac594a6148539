"""Instrumentation overhead: microseconds added per OpenAI call against the uninstrumented client.

Runs on the local fake-llm server (time to first token 0, token delay 0), with real SDK providers
(BatchSpanProcessor into a discarding exporter, a metric reader, a logger provider) so the cost
measured is what an app pays. Blocks of instrumented and uninstrumented calls alternate in one process
(instrument/uninstrument between blocks) and the median per-block difference is reported.

    .venv/bin/python bench/instrumentation_overhead.py                       # spanlake
    .venv/bin/python bench/instrumentation_overhead.py --serve-only          # print URL, serve forever
    <peer venv>/bin/python bench/instrumentation_overhead.py --url URL --instrumentor openai-v2
    (peers: openai-v2 = opentelemetry-instrumentation-openai-v2, openinference = openinference-instrumentation-openai)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

STREAM_CHUNKS = 200
TOKENS_HEADER = "x-fake-llm-tokens"


class _DiscardingExporter:
    """A span exporter that drops everything (only the SDK pipeline cost remains)."""

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _providers() -> tuple[Any, Any, Any]:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_DiscardingExporter()))  # type: ignore[arg-type]
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()]), LoggerProvider()


def _toggles(name: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """(instrument, uninstrument) for one instrumentation, using real SDK providers."""
    tracer_provider, meter_provider, logger_provider = _providers()
    if name == "spanlake":
        import spanlake.instrumentation as sl

        return (
            lambda: sl.instrument(
                "bench",
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
                logger_provider=logger_provider,
            ),
            sl.uninstrument,
        )
    if name == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        inst: Any = OpenAIInstrumentor()
        return (
            lambda: inst.instrument(
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
                logger_provider=logger_provider,
            ),
            inst.uninstrument,
        )
    if name == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor as OIInstrumentor

        oi: Any = OIInstrumentor()
        return (lambda: oi.instrument(tracer_provider=tracer_provider), oi.uninstrument)
    raise SystemExit(f"unknown instrumentor {name!r}")


def _calls(client: Any) -> dict[str, Callable[[], None]]:
    messages = [{"role": "user", "content": "summarise ticket 42 for the support team"}]

    def non_stream() -> None:
        client.chat.completions.create(model="gpt-4o-mini", messages=messages, temperature=0.2)

    def stream() -> None:
        for _ in client.chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={TOKENS_HEADER: str(STREAM_CHUNKS)},
        ):
            pass

    return {"non-stream": non_stream, f"stream-{STREAM_CHUNKS}": stream}


def _block(call: Callable[[], None], n: int) -> tuple[float, float]:
    """(wall, client-process CPU) mean seconds per call over n calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        call()
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


def _median_us(values: list[float]) -> float:
    return round(statistics.median(values) * 1e6, 1)


def measure(url: str, instrumentor: str, calls: int, rounds: int) -> dict[str, Any]:
    """Alternate plain/instrumented blocks; return per-scenario medians in microseconds."""
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-bench", max_retries=0)
    instrument, uninstrument = _toggles(instrumentor)
    results: dict[str, Any] = {}
    for scenario, call in _calls(client).items():
        n = calls if scenario == "non-stream" else max(calls // 4, 10)
        _block(call, n)  # warm-up: connections, imports, caches
        instrument()
        _block(call, n)
        uninstrument()
        plain, traced = [], []
        for _ in range(rounds):
            plain.append(_block(call, n))
            instrument()
            traced.append(_block(call, n))
            uninstrument()
        results[scenario] = {
            "calls_per_block": n,
            "plain_wall_us": _median_us([p[0] for p in plain]),
            "added_wall_us": _median_us([t[0] - p[0] for p, t in zip(plain, traced)]),
            "plain_cpu_us": _median_us([p[1] for p in plain]),
            "added_cpu_us": _median_us([t[1] - p[1] for p, t in zip(plain, traced)]),
        }
    return results


def _start_server_process() -> tuple[subprocess.Popen[str], str]:
    """fake-llm in its own process, so its work neither shares our GIL nor counts as our CPU time."""
    process = subprocess.Popen([sys.executable, __file__, "--serve-only"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="an already running fake-llm server (else one is started in-process)")
    parser.add_argument(
        "--instrumentor", default="spanlake", choices=["spanlake", "openai-v2", "openinference"]
    )
    parser.add_argument("--calls", type=int, default=400, help="non-stream calls per block")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--serve-only", action="store_true", help="start fake-llm, print its URL, serve")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.serve_only:
        from spanlake.instrumentation.fake_llm import serve

        server = serve("127.0.0.1", 0, ttft_s=0.0, token_delay_s=0.0)
        print(server.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0
    process, url = (None, args.url) if args.url else _start_server_process()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    results = measure(url, args.instrumentor, args.calls, args.rounds)
    report = {
        "instrumentor": args.instrumentor,
        "cores": cores,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "results": results,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{args.instrumentor}: cores available {cores} (os.cpu_count {os.cpu_count()}), "
            f"Python {report['python']}"
        )
        for scenario, row in results.items():
            print(
                f"  {scenario:12s} plain {row['plain_wall_us']:9.1f} us wall / {row['plain_cpu_us']:8.1f} us CPU;"
                f"  added {row['added_wall_us']:7.1f} us wall / {row['added_cpu_us']:7.1f} us CPU per call"
                f"  ({row['calls_per_block']} calls x {args.rounds} rounds, medians)"
            )
    if process is not None:
        process.terminate()
        process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
