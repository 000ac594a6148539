"""Instrumentation overhead: microseconds added per OpenAI call against the uninstrumented client.

Runs on the local fake-llm server (time to first token 0, token delay 0), with real SDK providers
(BatchSpanProcessor into a discarding, counting exporter, a metric reader, a logger provider) so the
cost measured is what an app pays. Blocks of instrumented and uninstrumented calls alternate in one
process (instrument/uninstrument between blocks) and the median per-block difference is reported.
Each instrumentation keeps its own defaults (content capture, metrics); the span pipeline is flushed
between blocks, outside the timed region. A run fails loudly if an instrumented block exported no span
(a peer that silently does not instrument would otherwise look free), if a plain block exported any, or
if uninstrument left a wrapper on the openai client.

    .venv/bin/python bench/instrumentation_overhead.py                       # spanlake
    .venv/bin/python bench/instrumentation_overhead.py --serve-only          # print URL, serve forever
    <peer venv>/bin/python bench/instrumentation_overhead.py --url URL --instrumentor openai-v2

Peers, each in its own virtualenv (needs only the peer, openai and opentelemetry-sdk, not spanlake):
    openai-v2      opentelemetry-instrumentation-openai-v2   (OpenTelemetry contrib)
    openinference  openinference-instrumentation-openai      (Arize)
    openlit        openlit's OpenAIInstrumentor              (no openlit.init(): same SDK providers)
    openllmetry    opentelemetry-instrumentation-openai      (Traceloop)
openlit's and openllmetry's uninstrument leave their wrappers on, so for them the wrappers installed
by one instrument() are swapped in and out between blocks (see _swap_toggles).

All five side by side against one server, one table (peer venvs are <venvs-dir>/peer-<short name>):
    .venv/bin/python bench/instrumentation_overhead.py --setup-venvs          # create missing peer venvs
    .venv/bin/python bench/instrumentation_overhead.py --all-peers            # run all, print the table
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STREAM_CHUNKS = 200
TOKENS_HEADER = "x-fake-llm-tokens"
SCENARIOS = ("non-stream", f"stream-{STREAM_CHUNKS}")


@dataclass(frozen=True)
class Instrumentation:
    """One instrumentation under test: its distribution (for the version) and its peer venv name."""

    distribution: str
    venv: str | None  # directory name under --venvs-dir; None = runs in the spanlake venv


INSTRUMENTATIONS: dict[str, Instrumentation] = {
    "spanlake": Instrumentation("spanlake", None),
    "openai-v2": Instrumentation("opentelemetry-instrumentation-openai-v2", "peer-v2"),
    "openinference": Instrumentation("openinference-instrumentation-openai", "peer-oi"),
    "openlit": Instrumentation("openlit", "peer-openlit"),
    "openllmetry": Instrumentation("opentelemetry-instrumentation-openai", "peer-openllmetry"),
}

# OpenLLMetry's SDK phones home unless told not to (the instrumentation alone does not; belt and braces).
os.environ.setdefault("TRACELOOP_TELEMETRY", "false")

# Local pricing table for openlit (openlit.init() would fetch a pricing JSON by URL), per 1k tokens.
OPENLIT_PRICING = {"chat": {"gpt-4o-mini": {"promptPrice": 0.00015, "completionPrice": 0.0006}}}


class _DiscardingExporter:
    """A span exporter that drops everything but counts it (only the SDK pipeline cost remains)."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@dataclass
class Providers:
    """Real SDK providers; spans go through a BatchSpanProcessor into a counting, discarding exporter."""

    tracer_provider: Any
    meter_provider: Any
    logger_provider: Any
    exporter: _DiscardingExporter

    def exported_spans(self) -> int:
        """Flush the span pipeline and return the number of spans exported so far."""
        self.tracer_provider.force_flush()
        return self.exporter.exported


def _providers() -> Providers:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter = _DiscardingExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(exporter))  # type: ignore[arg-type]
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return Providers(tracer_provider, meter_provider, LoggerProvider(), exporter)


def _wrapt_patches() -> list[tuple[Any, str, Any, Any]]:
    """(owner, attribute, original, wrapper) for every wrapt wrapper on the openai modules and classes."""
    import wrapt

    proxy = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)  # wrapt 2 / wrapt 1
    seen: set[int] = set()
    patches = []
    for module_name, module in list(sys.modules.items()):
        if module is None or not (module_name == "openai" or module_name.startswith("openai.")):
            continue
        for owner in [module, *(v for v in vars(module).values() if isinstance(v, type))]:
            if id(owner) in seen:
                continue
            seen.add(id(owner))
            for attribute, value in list(vars(owner).items()):
                if isinstance(value, proxy):
                    patches.append((owner, attribute, value.__wrapped__, value))
    return patches


def _swap_toggles(instrument_once: Callable[[], None]) -> tuple[Callable[[], None], Callable[[], None]]:
    """Toggles for an instrumentor whose uninstrument does not unwrap (openlit, openllmetry): instrument
    once, then swap its wrapt wrappers in and out, as unwrap/re-wrap would, without re-running setup."""
    patches: list[tuple[Any, str, Any, Any]] = []

    def instrument() -> None:
        if not patches:
            instrument_once()
            patches.extend(_wrapt_patches())
            if not patches:
                raise SystemExit("instrumentor left no wrapt wrapper on openai: nothing to toggle")
        else:
            for owner, attribute, _, wrapper in patches:
                setattr(owner, attribute, wrapper)

    def uninstrument() -> None:
        for owner, attribute, original, _ in patches:
            setattr(owner, attribute, original)

    return instrument, uninstrument


def _toggles(name: str, providers: Providers) -> tuple[Callable[[], None], Callable[[], None]]:
    """(instrument, uninstrument) for one instrumentation, using the given real SDK providers."""
    tracer_provider, meter_provider, logger_provider = (
        providers.tracer_provider,
        providers.meter_provider,
        providers.logger_provider,
    )
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
    if name == "openllmetry":
        # Its uninstrument calls unwrap("openai.resources.chat.completions", "Completions.create"), which
        # opentelemetry-instrumentation's unwrap reads as attribute "Completions.create" of the module: a
        # no-op, so its wrappers stay and re-instrumenting would stack them. Hence swap them in and out.
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as TraceloopInstrumentor

        tl: Any = TraceloopInstrumentor()
        return _swap_toggles(
            lambda: tl.instrument(
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
                logger_provider=logger_provider,
            )
        )
    if name == "openlit":
        return _swap_toggles(lambda: _instrument_openlit(providers))
    raise SystemExit(f"unknown instrumentor {name!r}")


def _instrument_openlit(providers: Providers) -> None:
    """openlit's OpenAIInstrumentor with what openlit.init() would pass, minus its exporters and the
    pricing download. It takes its tracer and logger from the global providers and its metric
    instruments from OpenlitConfig.metrics_dict, so those are set to our providers first."""
    from openlit._config import OpenlitConfig
    from openlit.instrumentation.openai import OpenAIInstrumentor as OpenlitInstrumentor
    from openlit.otel.metrics import setup_meter
    from opentelemetry import _logs, metrics, trace

    trace.set_tracer_provider(providers.tracer_provider)
    metrics.set_meter_provider(providers.meter_provider)
    _logs.set_logger_provider(providers.logger_provider)
    OpenlitConfig.reset_to_defaults()  # the defaults of openlit.init(): content captured, metrics on
    metrics_dict, error = setup_meter(
        application_name="bench", environment="bench", meter=None, otlp_endpoint=None, otlp_headers=None
    )
    if error:
        raise SystemExit(f"openlit setup_meter failed: {error}")
    OpenlitConfig.metrics_dict = metrics_dict
    OpenlitConfig.pricing_info = OPENLIT_PRICING
    OpenlitInstrumentor().instrument(
        environment="bench",
        application_name="bench",
        pricing_info=OPENLIT_PRICING,
        capture_message_content=OpenlitConfig.capture_message_content,
        disable_metrics=OpenlitConfig.disable_metrics,
        disable_events=OpenlitConfig.disable_events,
        capture_db_parameters=OpenlitConfig.capture_db_parameters,
    )


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

    return dict(zip(SCENARIOS, (non_stream, stream)))


def _block(call: Callable[[], None], n: int) -> tuple[float, float]:
    """(wall, client-process CPU) mean seconds per call over n calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        call()
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


def _counted_block(call: Callable[[], None], n: int, providers: Providers) -> tuple[tuple[float, float], int]:
    """`_block` plus the spans it exported (the pipeline is flushed before and after, untimed)."""
    before = providers.exported_spans()
    timing = _block(call, n)
    return timing, providers.exported_spans() - before


def _median_us(values: list[float]) -> float:
    return round(statistics.median(values) * 1e6, 1)


def measure(url: str, instrumentor: str, calls: int, rounds: int) -> dict[str, Any]:
    """Alternate plain/instrumented blocks; return per-scenario medians in microseconds and the spans
    exported per instrumented call. Raises SystemExit if the instrumentation did not trace."""
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-bench", max_retries=0)
    providers = _providers()
    instrument, uninstrument = _toggles(instrumentor, providers)
    results: dict[str, Any] = {}
    for scenario, call in _calls(client).items():
        n = calls if scenario == "non-stream" else max(calls // 4, 10)
        _block(call, n)  # warm-up: connections, imports, caches
        instrument()
        _, spans = _counted_block(call, n, providers)
        uninstrument()
        _check_unwrapped(instrumentor)
        plain, traced = [], []
        for _ in range(rounds):
            timing, leaked = _counted_block(call, n, providers)
            if leaked:
                raise SystemExit(f"{instrumentor}: {leaked} spans from an uninstrumented {scenario} block")
            plain.append(timing)
            instrument()
            timing, exported = _counted_block(call, n, providers)
            uninstrument()
            traced.append(timing)
            spans += exported
        if spans == 0:
            raise SystemExit(f"{instrumentor}: no span exported for {scenario} calls: not instrumented")
        results[scenario] = {
            "calls_per_block": n,
            "plain_wall_us": _median_us([p[0] for p in plain]),
            "added_wall_us": _median_us([t[0] - p[0] for p, t in zip(plain, traced)]),
            "plain_cpu_us": _median_us([p[1] for p in plain]),
            "added_cpu_us": _median_us([t[1] - p[1] for p, t in zip(plain, traced)]),
            "spans_per_call": round(spans / (n * (rounds + 1)), 3),
        }
    return results


def _check_unwrapped(instrumentor: str) -> None:
    """Uninstrument must leave no wrapper behind (else 'plain' blocks would still pay for it)."""
    left = [f"{getattr(o, '__name__', o)}.{a}" for o, a, _, _ in _wrapt_patches()]
    if left:
        raise SystemExit(f"{instrumentor}: uninstrument left wrappers on {', '.join(left[:5])}")


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _cores() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _start_server_process() -> tuple[subprocess.Popen[str], str]:
    """fake-llm in its own process, so its work neither shares our GIL nor counts as our CPU time."""
    process = subprocess.Popen([sys.executable, __file__, "--serve-only"], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _venv_python(venvs_dir: Path, name: str) -> Path:
    """The interpreter that runs one instrumentation: this one for spanlake, else the peer venv's."""
    venv = INSTRUMENTATIONS[name].venv
    return Path(sys.executable) if venv is None else venvs_dir / venv / "bin" / "python"


def setup_venvs(venvs_dir: Path, names: Sequence[str]) -> None:
    """Create each missing peer venv: the newest peer with opentelemetry-sdk, then this venv's openai
    version if the peer accepts it, else the newest openai it accepts (the table shows which). Pinning
    openai first would let pip fall back to an old peer release instead (openlit 1.26 for openai 3)."""
    openai_pin = f"openai=={_version('openai')}"
    for name in names:
        instrumentation = INSTRUMENTATIONS[name]
        if instrumentation.venv is None or (venvs_dir / instrumentation.venv / "bin" / "python").exists():
            continue
        path = venvs_dir / instrumentation.venv
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        pip = [str(path / "bin" / "pip"), "install", "-q"]
        subprocess.run([*pip, instrumentation.distribution, "openai", "opentelemetry-sdk"], check=True)
        peer = f"{instrumentation.distribution}=={_pip_version(path, instrumentation.distribution)}"
        if subprocess.run([*pip, peer, openai_pin], check=False).returncode != 0:
            print(f"{name}: {peer} does not accept {openai_pin}; keeping the openai it took", flush=True)


def _pip_version(venv: Path, distribution: str) -> str:
    """The version of a distribution installed in another venv."""
    command = [
        str(venv / "bin" / "python"),
        "-c",
        f"import importlib.metadata as m; print(m.version({distribution!r}))",
    ]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def run_all(
    names: Sequence[str], venvs_dir: Path, calls: int, rounds: int, url: str | None
) -> list[dict[str, Any]]:
    """Run each instrumentation in its own interpreter, one after another, against one server."""
    process, url = (None, url) if url else _start_server_process()
    reports = []
    try:
        for name in names:
            python = _venv_python(venvs_dir, name)
            command = [str(python), __file__, "--url", url, "--instrumentor", name, "--json"]
            command += ["--calls", str(calls), "--rounds", str(rounds)]
            print(f"running {name} ({python}) ...", file=sys.stderr, flush=True)
            if not python.exists():
                reports.append({"instrumentor": name, "error": f"no venv {python.parent.parent}"})
                continue
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
                reports.append({"instrumentor": name, "error": reason})
            else:
                reports.append(json.loads(done.stdout.strip().splitlines()[-1]))
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
    return reports


def print_table(reports: Sequence[dict[str, Any]], rounds: int) -> None:
    """One row per instrumentation: µs added per call (CPU, wall) per scenario and spans per call."""
    non_stream, stream = SCENARIOS
    print(f"cores available {_cores()} (os.cpu_count {os.cpu_count()}), Python {platform.python_version()}")
    print(f"medians over {rounds} rounds of alternating plain/instrumented blocks; us added per call")
    header = (
        f"{'instrumentor':13s} {'version':10s} {'openai':8s} "
        f"{'non-stream CPU':>14s} {'wall':>7s} {f'{stream} CPU':>16s} {'wall':>7s} {'spans/call':>10s}"
    )
    print(header)
    print("-" * len(header))
    for report in reports:
        name = report["instrumentor"]
        if "error" in report:
            print(f"{name:13s} FAILED: {report['error']}")
            continue
        a, b = report["results"][non_stream], report["results"][stream]
        print(
            f"{name:13s} {report['version']:10s} {report['openai']:8s} "
            f"{a['added_cpu_us']:14.1f} {a['added_wall_us']:7.1f} "
            f"{b['added_cpu_us']:16.1f} {b['added_wall_us']:7.1f} "
            f"{a['spans_per_call']:4g} / {b['spans_per_call']:g}"
        )
    plain = next((r for r in reports if "error" not in r), None)
    if plain is not None:
        a, b = plain["results"][non_stream], plain["results"][stream]
        print(
            f"(uninstrumented call, {plain['instrumentor']} venv: non-stream {a['plain_cpu_us']:.0f} us CPU / "
            f"{a['plain_wall_us']:.0f} us wall; {stream} {b['plain_cpu_us']:.0f} us CPU / "
            f"{b['plain_wall_us']:.0f} us wall)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="an already running fake-llm server (else one is started)")
    parser.add_argument("--instrumentor", default="spanlake", choices=list(INSTRUMENTATIONS))
    parser.add_argument("--calls", type=int, default=400, help="non-stream calls per block")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--serve-only", action="store_true", help="start fake-llm, print its URL, serve")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--all-peers", action="store_true", help="run every instrumentation, one table")
    parser.add_argument("--setup-venvs", action="store_true", help="create the missing peer venvs")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(INSTRUMENTATIONS),
        default=list(INSTRUMENTATIONS),
        help="instrumentations for --all-peers / --setup-venvs (default: all)",
    )
    parser.add_argument("--venvs-dir", type=Path, default=Path("/tmp"), help="where the peer-* venvs are")
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
    if args.setup_venvs:
        setup_venvs(args.venvs_dir, args.only)
        return 0
    if args.all_peers:
        reports = run_all(args.only, args.venvs_dir, args.calls, args.rounds, args.url)
        if args.json:
            print(json.dumps(reports))
        else:
            print_table(reports, args.rounds)
        return 1 if any("error" in r for r in reports) else 0
    process, url = (None, args.url) if args.url else _start_server_process()
    try:
        results = measure(url, args.instrumentor, args.calls, args.rounds)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
    report = {
        "instrumentor": args.instrumentor,
        "version": _version(INSTRUMENTATIONS[args.instrumentor].distribution),
        "openai": _version("openai"),
        "cores": _cores(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "results": results,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"{args.instrumentor} {report['version']} (openai {report['openai']}): cores available "
            f"{report['cores']} (os.cpu_count {os.cpu_count()}), Python {report['python']}"
        )
        for scenario, row in results.items():
            print(
                f"  {scenario:12s} plain {row['plain_wall_us']:9.1f} us wall / {row['plain_cpu_us']:8.1f} us CPU;"
                f"  added {row['added_wall_us']:7.1f} us wall / {row['added_cpu_us']:7.1f} us CPU per call;"
                f"  {row['spans_per_call']:g} spans/call"
                f"  ({row['calls_per_block']} calls x {args.rounds} rounds, medians)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
