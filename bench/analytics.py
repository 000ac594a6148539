"""Analytics benchmark (a script, not a test): 10 million realistic LLM spans over 30 days, then time
every analytic, a few dashboard queries, one trace's spans and the whole ``analyze``.

    .venv/bin/python bench/analytics.py [--spans 10000000] [--days 30] [--dir /tmp/spanlake-bench] [--reuse]

Goals on this machine: each dashboard query ≤ 1 s, one trace's spans ≤ 100 ms, full analyze ≤ 60 s.
"""

from __future__ import annotations

import argparse
import binascii
import datetime as dt
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from spanlake.analytics import (
    Window,
    analyze,
    cost_summary,
    latency_summary,
    load_config,
    run_jobs,
    trace_spans,
)
from spanlake.analytics.latency import latency_timeseries
from spanlake.collector.settings import load_settings
from spanlake.collector.storage import schema
from spanlake.collector.storage.lake_writer import LakeWriter
from spanlake.collector.storage.reader import open_snapshot
from spanlake.instrumentation import semconv as sc

UTC = dt.timezone.utc
END = dt.datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
MODELS = [  # request model, provider, response model, usd per 1k input, per 1k output, base latency ms, weight
    ("gpt-4o", "openai", "gpt-4o-2024-08-06", 0.0025, 0.01, 600, 0.30),
    ("gpt-4o-mini-2024-07-18", "openai", "gpt-4o-mini-2024-07-18", 0.00015, 0.0006, 350, 0.30),
    ("claude-sonnet-4-5-20250929", "anthropic", "claude-sonnet-4-5-20250929", 0.003, 0.015, 900, 0.25),
    ("gemini-2.0-flash", "google", "gemini-2.0-flash-001", 0.0001, 0.0004, 400, 0.10),
    ("text-embedding-3-small", "openai", "text-embedding-3-small", 0.00002, 0.0, 120, 0.05),
]
FEATURES = ["chat", "search", "summarise", "extract", "classify", "agent", "email-draft", "support"]
PROMPTS = ["answer", "summary", "router", "extractor", "support-reply"]
ERRORS = [("RateLimitError", 429, "Rate limit reached for requests in org-{}. Try again in {}s."),
          ("InternalServerError", 500, "Error code: 500 - The server had an error processing your request {}{}"),
          ("APITimeoutError", None, "Request timed out after {} seconds ({})"),
          ("BadRequestError", 400, "Invalid request: context length {} exceeds {}")]


def hex_ids(rng: np.random.Generator, n: int, nbytes: int) -> pa.Array:
    """n random lowercase hex ids, vectorised (hexlify one buffer, view as fixed-width strings)."""
    raw = binascii.hexlify(rng.bytes(n * nbytes))
    return pa.array(np.frombuffer(raw, dtype=f"S{nbytes * 2}")).cast(pa.string())


def string_list(values: np.ndarray, present: np.ndarray) -> pa.Array:
    """A list<string> column with one element where ``present``, NULL elsewhere."""
    offsets = np.concatenate([[0], np.cumsum(present.astype(np.int32))]).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values[present], pa.string()))
    return pa.compute.if_else(pa.array(present), lists, pa.nulls(len(values), lists.type))


def one_key_map(key: str, values: np.ndarray, present: np.ndarray) -> pa.Array:
    offsets = np.concatenate([[0], np.cumsum(present.astype(np.int32))]).astype(np.int32)
    n_items = int(present.sum())
    return pa.MapArray.from_arrays(pa.array(offsets), pa.array([key] * n_items, pa.string()),
                                   pa.array(values[present], pa.string()))


def day_of_spans(rng: np.random.Generator, day: dt.datetime, n: int, day_index: int, days: int) -> pa.Table:
    """One day of calls: diurnal traffic, model mix, token/latency/cost models, errors and incidents."""
    hour_weight = 1.0 + 0.6 * np.sin((np.arange(24) - 9) / 24 * 2 * np.pi)
    hours = rng.choice(24, n, p=hour_weight / hour_weight.sum())
    start_us = int(day.timestamp() * 1e6) + hours * 3_600_000_000 + rng.integers(0, 3_600_000_000, n)
    m = rng.choice(len(MODELS), n, p=[x[6] for x in MODELS])
    col = lambda i: np.array([x[i] for x in MODELS], dtype=object)[m]
    request_model, provider, response_model = col(0), col(1), col(2)
    if day_index >= days - 10:  # a silent provider update of the gpt-4o alias ten days ago
        response_model = np.where(request_model == "gpt-4o", "gpt-4o-2024-11-20", response_model)
    embed = request_model == "text-embedding-3-small"
    prompt = rng.integers(0, len(PROMPTS), n)
    version = np.where(rng.random(n) < 0.8, "v1", "v2")
    if day_index >= days - 2:
        version = np.where(rng.random(n) < 0.1, "v3", version)  # a canary in the last two days
    input_tokens = np.minimum(rng.lognormal(7.0, 1.0, n).astype(np.int64) + 20, 120_000)
    output_tokens = np.where(embed, 0, rng.lognormal(5.2, 0.6, n).astype(np.int64) + 5)
    output_tokens = np.where(version == "v3", (output_tokens * 1.3).astype(np.int64), output_tokens)
    stream = ~embed & (rng.random(n) < 0.6)
    base = np.array([x[5] for x in MODELS])[m]
    duration = base + input_tokens * 0.02 + output_tokens * 12.0 * rng.lognormal(0, 0.25, n)
    ttft = np.where(stream, (base + input_tokens * 0.02) / 1000 * rng.lognormal(0, 0.3, n), np.nan)
    price_in, price_out = np.array([x[3] for x in MODELS])[m], np.array([x[4] for x in MODELS])[m]
    cost = input_tokens / 1000 * price_in + output_tokens / 1000 * price_out
    failed = rng.random(n) < 0.02
    etype = rng.integers(0, len(ERRORS), n)
    error_type = np.where(failed, np.array([e[0] for e in ERRORS], dtype=object)[etype], None)
    http = np.array([e[1] or 0 for e in ERRORS])[etype]
    message = np.where(failed, np.array([e[2] for e in ERRORS], dtype=object)[etype], None)
    finish = np.where(rng.random(n) < 0.03, "length", np.where(rng.random(n) < 0.01, "refusal", "stop"))
    n_traces = n // 3 + 1
    trace_id = hex_ids(rng, n_traces, 16).take(pa.array(np.sort(rng.integers(0, n_traces, n))))
    fingerprint = np.full(n, "fp_new" if day_index >= days - 10 else "fp_old", dtype=object)
    data = {
        "trace_id": trace_id, "span_id": hex_ids(rng, n, 8), "name": pa.array(request_model, pa.string()),
        "kind": pa.array(np.full(n, "CLIENT", dtype=object), pa.string()),
        "start_time": pa.array(start_us, pa.int64()).cast(schema.TS),
        "end_time": pa.array(start_us + (duration * 1000).astype(np.int64), pa.int64()).cast(schema.TS),
        "start_time_unix_nano": pa.array(start_us * 1000), "duration_ms": pa.array(duration),
        "status_code": pa.array(np.where(failed, "ERROR", "UNSET").astype(object), pa.string()),
        "status_message": pa.array(message, pa.string()),
        "service_name": pa.array(np.where(rng.random(n) < 0.7, "web-api", "worker").astype(object), pa.string()),
        "operation": pa.array(np.where(embed, "embeddings", "chat").astype(object), pa.string()),
        "provider": pa.array(provider, pa.string()), "request_model": pa.array(request_model, pa.string()),
        "response_model": pa.array(response_model, pa.string()),
        "input_tokens": pa.array(input_tokens), "output_tokens": pa.array(output_tokens),
        "total_tokens": pa.array(input_tokens + output_tokens),
        "ttft_s": pa.array(ttft, from_pandas=True), "is_stream": pa.array(stream),
        "finish_reasons": string_list(finish.astype(object), ~embed & ~failed),
        "user_id": pa.array(np.char.add("user-", rng.integers(0, 5000, n).astype(str)).astype(object), pa.string()),
        "session_id": pa.array(np.char.add("s-", rng.integers(0, 50_000, n).astype(str)).astype(object), pa.string()),
        "feature": pa.array(np.array(FEATURES, dtype=object)[rng.integers(0, len(FEATURES), n)], pa.string()),
        "prompt_name": pa.array(np.where(embed, None, np.array(PROMPTS, dtype=object)[prompt]), pa.string()),
        "prompt_version": pa.array(np.where(embed, None, version.astype(object)), pa.string()),
        "error_type": pa.array(error_type, pa.string()), "cost_usd": pa.array(cost),
        "output_chars": pa.array(output_tokens * 4),
        "attributes": one_key_map(sc.GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT, fingerprint, provider == "openai"),
        "dt": pa.array(np.full(n, (day.date() - dt.date(1970, 1, 1)).days, dtype=np.int32)).cast(pa.date32()),
    }
    if "http_status" in schema.column_names(schema.SPANS):
        data["http_status"] = pa.array(np.where(failed & (http > 0), http, 0), pa.int32()).cast(pa.int32())
        data["http_status"] = pa.compute.if_else(pa.array(failed & (http > 0)), data["http_status"],
                                                 pa.nulls(n, pa.int32()))
    arrow_schema = schema.arrow_schema(schema.SPANS)
    return pa.Table.from_arrays([data[f.name].cast(f.type) if f.name in data else pa.nulls(n, f.type)
                                 for f in arrow_schema], schema=arrow_schema)


def generate(lake_dir: Path, total: int, days: int) -> float:
    rng = np.random.default_rng(42)
    writer = LakeWriter(lake_dir)
    started = time.perf_counter()
    per_day = total // days
    for i in range(days):
        day = END - dt.timedelta(days=days - i)
        writer.append(schema.SPANS, day_of_spans(rng, day, per_day, i, days), i + 1)
    return time.perf_counter() - started


def timed(fn, repeat: int = 3) -> float:
    """Best of ``repeat`` (first run included: files are in the page cache after generation)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/spanlake-bench"))
    parser.add_argument("--reuse", action="store_true", help="keep an existing lake instead of regenerating")
    args = parser.parse_args()
    data_dir = args.dir
    lake_dir = data_dir / "lake"
    if not (args.reuse and lake_dir.exists()):
        shutil.rmtree(data_dir, ignore_errors=True)
        print(f"generating {args.spans:,} spans over {args.days} days ...", flush=True)
        print(f"  generated and written in {generate(lake_dir, args.spans, args.days):.1f} s", flush=True)
    now = END - dt.timedelta(hours=1)
    day, week, month = (Window.last(d, now) for d in ("24h", "7d", "30d"))
    rows: list[tuple[str, float, str]] = []
    with open_snapshot(lake_dir) as snap:
        total = snap.con.execute("SELECT count(*) FROM spans").fetchone()[0]
        trace_id, start_us = snap.con.execute("SELECT trace_id, epoch_us(start_time) FROM spans WHERE dt = ? "
                                              "LIMIT 1", [(now - dt.timedelta(days=3)).date()]).fetchone()
        sample = (trace_id, dt.datetime.fromtimestamp(start_us / 1e6, UTC))
        dashboard = {
            "p50/p95/p99 + TTFT by model, 24 h": lambda: latency_summary(snap, day, ["request_model"]),
            "p99 by model x input bucket, 7 d": lambda: latency_summary(snap, week, ["request_model", "input_bucket"]),
            "p99 by model, 30 d": lambda: latency_summary(snap, month, ["request_model"]),
            "latency per hour, 7 d": lambda: latency_timeseries(snap, week),
            "cost by feature, 30 d": lambda: cost_summary(snap, month, ["feature"]),
            "cost by user, 24 h": lambda: cost_summary(snap, day, ["user_id"]),
        }
        for name, fn in dashboard.items():
            rows.append(("dashboard: " + name, timed(fn), "≤ 1 s"))
        rows.append(("one trace's spans (time known)", timed(lambda: trace_spans(snap, sample[0], sample[1]), 5),
                     "≤ 100 ms"))
        rows.append(("one trace's spans (time unknown)", timed(lambda: trace_spans(snap, sample[0]), 3), "-"))
        settings = load_settings({"data_dir": data_dir}, {}, Path("/nonexistent.toml"))
        config = load_config({"budgets": [{"name": "daily", "period": "day", "soft_usd": 500, "hard_usd": 1000}],
                              "slo": [{"name": "ttft", "metric": "ttft_p99", "max": 2.0}]})
        outcome = run_jobs(snap, config, now, day)
        for name, seconds in outcome.seconds.items():
            rows.append(("job: " + name, seconds, "≤ 1 s" if name.startswith(("latency", "cost")) else "-"))
    started = time.perf_counter()
    result = analyze(settings, config, now, day)
    rows.append(("full analyze (jobs + results + alerts + catalog)", time.perf_counter() - started, "≤ 60 s"))
    print(f"\n{total:,} spans, {args.days} days; {os.cpu_count()} cores; failures: {result.failures or 'none'}")
    print(f"{'what':<52} {'seconds':>8}  goal")
    for name, seconds, goal in rows:
        print(f"{name:<52} {seconds:>8.3f}  {goal}")


if __name__ == "__main__":
    main()
