"""Redaction benchmark (not a test): the decode path's cost per span with redaction off, on, and with extras.

Decodes one ingest-bench request (512 spans: app roots + GenAI LLM spans with ~20 attributes; ``--heavy``
adds a 2 KB prompt and 1 KB completion of English text to each LLM span) through SpanBuilder.add_request
(``--full``: and take(), the Arrow build and GenAI normaliser),
as the lake writer does, and prints microseconds per span for each redaction setting.

    python bench/redaction.py --heavy
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import build_template  # noqa: E402
from spanlake.collector.attributes import AttributeDecoder  # noqa: E402
from spanlake.collector.convert import SpanBuilder  # noqa: E402
from spanlake.collector.redaction import Redactor  # noqa: E402

PROSE = {
    "clean": ("Summarise the ticket below for the support lead. The customer says the nightly export skipped "
              "the first rows again, and that nobody in the finance team got the attachment this week. "),
    # Anchor-dense on purpose: "task-" holds "sk-" and "bearer" is an anchor, so every sentence is looked at.
    "dense": ("Summarise the ticket below for the support lead. The customer says the export task-runner "
              "skipped the skeleton rows and that the bearer of the report never got the attachment. "),
}


def _request(heavy: bool, spans: int, prose: str) -> trace_service_pb2.ExportTraceServiceRequest:
    raw = build_template(spans, heavy, seed=7)
    if heavy:  # the ingest bench's filler ("xxxx") is kinder to a pre-check than prose: use prose
        text = PROSE[prose] * 20
        raw = raw.replace(b"x" * 2048, text.encode()[:2048]).replace(b"y" * 1024, text.encode()[:1024])
    return trace_service_pb2.ExportTraceServiceRequest.FromString(raw)


def _decode(redactor: Redactor | None, request: trace_service_pb2.ExportTraceServiceRequest,
            full: bool) -> Callable[[], None]:
    builder = SpanBuilder(AttributeDecoder(65536, 16, redactor), 10**12)
    received = time.time_ns()

    def run() -> None:
        builder.add_request(request, received)
        if full:  # the writer's whole conversion: Arrow columns and the GenAI normaliser too
            builder.take()
        else:
            builder._reset()

    return run


def per_span_us(request: trace_service_pb2.ExportTraceServiceRequest, redactors: dict[str, Redactor | None],
                repeat: int, full: bool = False) -> dict[str, float]:
    """Best CPU time per span of each setting, the settings interleaved so machine load hits them alike."""
    n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    runs = {name: _decode(r, request, full) for name, r in redactors.items()}
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, run in runs.items():
            # CPU time, not wall time: on a shared machine a preempted run would look slow
            cpu = timeit.Timer(run, timer=time.process_time).timeit(number=5)
            best[name] = min(best[name], cpu / 5 / n * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--heavy", action="store_true")
    parser.add_argument("--spans", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--prose", choices=tuple(PROSE), default="clean", help="the heavy content's text")
    parser.add_argument("--full", action="store_true", help="time add_request + take (the whole conversion)")
    args = parser.parse_args()
    request = _request(args.heavy, args.spans, args.prose)
    best = per_span_us(request, {"off": None, "on": Redactor(), "extra": Redactor([r"acme-[0-9a-f]{32}"])},
                       args.repeat, args.full)
    off = best["off"]
    what = "decode+build" if args.full else "decode"
    kind = f"heavy, {args.prose} prose" if args.heavy else "light"
    print(f"{what} per span ({kind}, {args.spans} spans/request, best of {args.repeat}):")
    for name, label in (("off", "redact off"), ("on", "redact on"), ("extra", "redact on + 1 pattern")):
        us = best[name]
        print(f"  {label:22s} {us:7.2f} us  (+{us - off:.2f} us, {100 * (us - off) / off:+.1f} %)")

if __name__ == "__main__":
    main()
