"""Ingest benchmark (not a test): a real collector, N concurrent OTLP senders, figures printed.

Requests are pre-serialised realistic GenAI traces (an app root span plus LLM child spans with
about 20 attributes each; ``--heavy`` adds a 2 KB prompt and a 1 KB completion per LLM span);
each request gets fresh trace ids by a byte-level replace, so no work happens in the senders.
Reports spans/s acknowledged and queryable end to end, ack latency and ack-to-queryable lag
percentiles, peak RSS of the collector processes, bytes per span on disk, and the core count.

    python bench/ingest.py --protocol grpc --seconds 20 --senders 4
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness import CollectorProcess
from spanlake.collector.storage.reader import open_snapshot
from spanlake.instrumentation import semconv as sc

# Last 4 bytes of every template trace id, replaced per request. (The collector picks a WAL shard by
# a trace id's last byte, so they must vary as real, random trace ids do.)
SALT = b"\xa5SLK"
MODELS = [("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"), ("anthropic", "claude-3-5-haiku-latest",
          "claude-3-5-haiku-20241022"), ("openai", "gpt-4.1", "gpt-4.1-2025-04-14")]


def _kv(key: str, value: object) -> common_pb2.KeyValue:
    if isinstance(value, bool):
        any_value = common_pb2.AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = common_pb2.AnyValue(int_value=value)
    elif isinstance(value, float):
        any_value = common_pb2.AnyValue(double_value=value)
    elif isinstance(value, list):
        any_value = common_pb2.AnyValue(array_value=common_pb2.ArrayValue(
            values=[common_pb2.AnyValue(string_value=v) for v in value]))
    else:
        any_value = common_pb2.AnyValue(string_value=str(value))
    return common_pb2.KeyValue(key=key, value=any_value)


def _llm_attrs(rng: random.Random, heavy: bool) -> list[common_pb2.KeyValue]:
    provider, model, response_model = rng.choice(MODELS)
    attrs = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: provider, sc.GEN_AI_REQUEST_MODEL: model,
             sc.GEN_AI_RESPONSE_MODEL: response_model, sc.GEN_AI_RESPONSE_ID: f"chatcmpl-{rng.getrandbits(64):x}",
             sc.GEN_AI_REQUEST_TEMPERATURE: 0.2, sc.GEN_AI_REQUEST_MAX_TOKENS: 512, sc.GEN_AI_REQUEST_TOP_P: 0.9,
             sc.GEN_AI_USAGE_INPUT_TOKENS: rng.randint(50, 4000), sc.GEN_AI_USAGE_OUTPUT_TOKENS: rng.randint(5, 800),
             sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: rng.randint(0, 40),
             sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"], sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: rng.random(),
             sc.GEN_AI_REQUEST_STREAM: True, sc.SERVER_ADDRESS: "api.example.com", sc.SERVER_PORT: 443,
             sc.SPANLAKE_FEATURE: rng.choice(["ticket-summary", "search", "chat"]),
             sc.USER_ID: f"user-{rng.randint(1, 500)}", sc.SESSION_ID: f"sess-{rng.randint(1, 5000)}",
             sc.GEN_AI_PROMPT_NAME: "summarise", sc.GEN_AI_PROMPT_VERSION: rng.choice(["v3", "v4"])}
    if heavy:
        prompt = "x" * 2048
        attrs[sc.GEN_AI_INPUT_MESSAGES] = f'[{{"role":"user","parts":[{{"type":"text","content":"{prompt}"}}]}}]'
        attrs[sc.GEN_AI_OUTPUT_MESSAGES] = (
            f'[{{"role":"assistant","parts":[{{"type":"text","content":"{"y" * 1024}"}}],"finish_reason":"stop"}}]')
    return [_kv(k, v) for k, v in attrs.items()]


def build_template(spans_per_request: int, heavy: bool, seed: int) -> bytes:
    """One ExportTraceServiceRequest of app traces: a SERVER root + 2 CLIENT LLM children each."""
    rng = random.Random(seed)
    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([_kv("service.name", "bench-app"), _kv("deployment.environment.name", "bench"),
                                   _kv("telemetry.sdk.language", "python"), _kv("service.version", "1.0")])
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "bench.instrumentation", "1.0"
    now = time.time_ns()
    made = 0
    while made < spans_per_request:
        trace_id = rng.randbytes(12) + SALT
        root_id = rng.randbytes(8)
        start = now - rng.randint(0, 10**9)
        ss.spans.append(trace_pb2.Span(
            trace_id=trace_id, span_id=root_id, name="POST /api/chat", kind=trace_pb2.Span.SPAN_KIND_SERVER,
            start_time_unix_nano=start, end_time_unix_nano=start + 900_000_000,
            attributes=[_kv("http.request.method", "POST"), _kv("http.route", "/api/chat"),
                        _kv("http.response.status_code", 200), _kv("url.scheme", "https"),
                        _kv("user.id", "user-1"), _kv("app.feature", "ticket-summary")]))
        made += 1
        for i in range(2):
            if made >= spans_per_request:
                break
            s = start + 10_000_000 + i * 400_000_000
            ss.spans.append(trace_pb2.Span(
                trace_id=trace_id, span_id=rng.randbytes(8), parent_span_id=root_id,
                name="chat gpt-4o-mini", kind=trace_pb2.Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=s, end_time_unix_nano=s + 350_000_000, attributes=_llm_attrs(rng, heavy)))
            made += 1
    return req.SerializeToString()


class Sender(threading.Thread):
    """Sends requests as fast as acks come back, until the deadline; records ack times."""

    def __init__(self, protocol: str, target: str, templates: list[bytes], counter: Counter,
                 deadline: float, interval_s: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s  # 0: send as fast as acks come back
        self.protocol, self.target, self.templates = protocol, target, templates
        self.counter, self.deadline = counter, deadline
        self.acks: list[tuple[float, float]] = []  # (send time, ack time)
        self.refused = 0

    def run(self) -> None:
        send = self._grpc_sender() if self.protocol == "grpc" else self._http_sender()
        i = 0
        next_send = time.monotonic()
        while time.monotonic() < self.deadline:
            if self.interval_s:
                next_send += self.interval_s
                time.sleep(max(0.0, next_send - time.monotonic()))
            salt = self.counter.next().to_bytes(4, "big")  # low byte last: shards alternate
            body = self.templates[i % len(self.templates)].replace(SALT, salt)
            i += 1
            t0 = time.monotonic()
            if send(body):
                self.acks.append((t0, time.monotonic()))
            else:
                self.refused += 1
                time.sleep(0.2)

    def _grpc_sender(self):
        channel = grpc.insecure_channel(self.target, options=[("grpc.max_send_message_length", 64 << 20)])
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                     request_serializer=None, response_deserializer=None)

        def send(body: bytes) -> bool:
            try:
                export(body, timeout=60)
                return True
            except grpc.RpcError as exc:
                if exc.code() not in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE):
                    raise
                return False
        return send

    def _http_sender(self):
        host, port = self.target.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=60)

        def send(body: bytes) -> bool:
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            resp = conn.getresponse()
            resp.read()
            if resp.status in (429, 503):
                return False
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            return True
        return send


class Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._n = 0

    def next(self) -> int:
        with self._lock:
            self._n += 1
            return self._n


def poll_visible(lake: Path, stop: threading.Event, samples: list[tuple[float, int]]) -> None:
    """Record (time, visible span count) about 4 times a second, as a reader would see it."""
    while not stop.is_set():
        with open_snapshot(lake, threads=1) as snap:
            n = snap.con.execute("select count(*) from spans").fetchone()[0]
        samples.append((time.monotonic(), int(n)))
        stop.wait(0.25)


def _rss_peak_kb(pid: int, verbose: bool = False) -> int:
    """Peak RSS (VmHWM) summed over the collector and its child processes."""
    total = 0
    pids = [pid] + [int(p) for p in os.popen(f"ps -o pid= --ppid {pid}").read().split()]
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except FileNotFoundError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        peak = int(fields["VmHWM"].split()[0])
        total += peak
        if verbose:
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            cpu_s = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
            print(f"  pid {p} {fields['Name'].strip():16s} peak RSS {peak / 1024:.0f} MB, CPU {cpu_s:.1f} s",
                  file=sys.stderr)
    return total


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run(args: argparse.Namespace) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="spanlake-bench-"))
    data = workdir / "data"
    data.mkdir()
    env = {"SPANLAKE_COMPACT_INTERVAL_S": "0", "SPANLAKE_LOG_LEVEL": "WARNING"}
    collector = CollectorProcess(data, env=env).start()
    if args.keep:
        print(f"data dir kept: {data}", file=sys.stderr)
    templates = [build_template(args.spans_per_request, args.heavy, seed) for seed in range(8)]
    spans_per_request = args.spans_per_request
    target = collector.grpc_target if args.protocol == "grpc" else f"127.0.0.1:{collector.http_port}"
    counter = Counter()
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    poller = threading.Thread(target=poll_visible, args=(data / "lake", stop, samples), daemon=True)
    start = time.monotonic()
    interval = args.senders * spans_per_request / args.rate if args.rate else 0.0
    senders = [Sender(args.protocol, target, templates, counter, start + args.seconds, interval)
               for _ in range(args.senders)]
    poller.start()
    for s in senders:
        s.start()
    for s in senders:
        s.join()
    send_end = time.monotonic()
    acks = sorted(a for s in senders for a in s.acks)
    total = len(acks) * spans_per_request
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not samples or samples[-1][1] < total):
        time.sleep(0.2)
    stop.set()
    poller.join()
    visible_at = next((t for t, n in samples if n >= total), float("nan"))
    if samples and samples[-1][1] != total:
        print(f"warning: {samples[-1][1]:,} spans visible, {total:,} acknowledged", file=sys.stderr)
    lags = _lags(acks, samples, spans_per_request)
    rss_kb = _rss_peak_kb(collector.proc.pid, verbose=args.keep)
    if args.keep:
        import resource
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(f"  benchmark process (senders, poller) CPU {usage.ru_utime + usage.ru_stime:.1f} s", file=sys.stderr)
    if args.keep:
        import urllib.request
        text = urllib.request.urlopen(f"http://127.0.0.1:{collector.http_port}/metrics").read().decode()
        print("\n".join(x for x in text.splitlines() if not x.startswith("#")), file=sys.stderr)
    collector.stop()
    lake_bytes = sum(f.stat().st_size for f in (data / "lake" / "spans").rglob("*.parquet"))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    ack_lat = [b - a for a, b in acks]
    first_ack = acks[0][0] if acks else start
    return {"spans": total, "refused_requests": sum(s.refused for s in senders),
            "acked_per_s": total / (send_end - start), "queryable_per_s": total / (visible_at - first_ack),
            "ack_p50_ms": pct(ack_lat, 0.5) * 1e3, "ack_p99_ms": pct(ack_lat, 0.99) * 1e3,
            "lag_p50_s": pct(lags, 0.5), "lag_p99_s": pct(lags, 0.99), "peak_rss_mb": rss_kb / 1024,
            "bytes_per_span": lake_bytes / max(total, 1)}


def _lags(acks: list[tuple[float, float]], samples: list[tuple[float, int]], per_request: int) -> list[float]:
    """Ack-to-queryable lag per request, assuming FIFO visibility (the WAL is consumed in order)."""
    lags: list[float] = []
    by_ack = sorted(b for _, b in acks)
    j = 0
    for k, ack_time in enumerate(by_ack, start=1):
        needed = k * per_request
        while j < len(samples) and samples[j][1] < needed:
            j += 1
        if j == len(samples):
            break
        lags.append(max(0.0, samples[j][0] - ack_time))
    return lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=("grpc", "http", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--spans-per-request", type=int, default=512)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="offered spans/s in total (default: as fast as the collector acknowledges)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--heavy", action="store_true", help="2 KB prompt + 1 KB completion per LLM span")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}  senders: {args.senders}  spans/request: {args.spans_per_request}  "
          f"heavy: {args.heavy}  seconds: {args.seconds}  offered: {args.rate or 'max'}")
    protocols = ["grpc", "http"] if args.protocol == "both" else [args.protocol]
    for protocol in protocols:
        args.protocol = protocol
        r = run(args)
        print(f"{protocol:5s} spans={r['spans']:,}  acked={r['acked_per_s']:,.0f}/s  "
              f"queryable={r['queryable_per_s']:,.0f}/s  ack p50/p99={r['ack_p50_ms']:.1f}/{r['ack_p99_ms']:.1f} ms  "
              f"lag p50/p99={r['lag_p50_s']:.2f}/{r['lag_p99_s']:.2f} s  refused={r['refused_requests']}  "
              f"peak RSS={r['peak_rss_mb']:.0f} MB  disk={r['bytes_per_span']:.0f} B/span")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
