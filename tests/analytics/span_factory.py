"""Builders of generated lakes for analytics tests: columns in, a real Delta lake out.

Spans are given column-wise (numpy arrays or lists); every stored column not given gets a
plausible default, so a test states only what its known answer depends on.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from spanlake.collector.storage import schema
from spanlake.collector.storage.lake_writer import LakeWriter
from spanlake.instrumentation import semconv as sc

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _ids(n: int, width: int, rng: np.random.Generator) -> list[str]:
    raw = rng.integers(0, 2**63, size=(n, width // 16), dtype=np.int64)
    return ["".join(f"{v:016x}" for v in row) for row in raw]


def _to_us(times: Any) -> np.ndarray:
    """datetimes / numpy datetime64 / int microseconds → int64 microseconds since epoch."""
    arr = np.asarray(times)
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[us]").astype(np.int64)
    if arr.dtype == object:
        return np.array([int(t.timestamp() * 1_000_000) for t in arr], dtype=np.int64)
    return arr.astype(np.int64)


def spans(n: int, start: Any, seed: int = 0, **columns: Any) -> pa.Table:
    """``n`` span rows starting at ``start`` (array or scalar) with the given columns; defaults elsewhere."""
    rng = np.random.default_rng(seed)
    start_us = _to_us(start if np.ndim(start) else [start] * n)
    duration_ms = np.asarray(columns.pop("duration_ms", rng.gamma(4.0, 250.0, n)), dtype=float)
    data: dict[str, Any] = {
        "trace_id": _ids(n, 32, rng), "span_id": _ids(n, 16, rng), "name": ["chat gpt-4o"] * n,
        "kind": ["CLIENT"] * n, "status_code": ["UNSET"] * n, "service_name": ["app"] * n,
        "operation": ["chat"] * n, "provider": ["openai"] * n, "request_model": ["gpt-4o-2024-08-06"] * n,
        "response_model": ["gpt-4o-2024-08-06"] * n, "input_tokens": rng.integers(100, 2000, n),
        "output_tokens": rng.integers(50, 500, n), "cost_usd": rng.uniform(0.001, 0.01, n),
        "feature": ["chat"] * n, "is_stream": [False] * n,
    }
    data.update(columns)
    data["start_time"] = pa.array(start_us, pa.int64()).cast(schema.TS)
    data["end_time"] = pa.array(start_us + (duration_ms * 1000).astype(np.int64), pa.int64()).cast(schema.TS)
    data["start_time_unix_nano"] = start_us * 1000
    data["duration_ms"] = duration_ms
    data["dt"] = pa.array(start_us // 86_400_000_000, pa.int32()).cast(pa.date32())
    arrow_schema = schema.arrow_schema(schema.SPANS)
    arrays = []
    for field in arrow_schema:
        value = data.get(field.name)
        arrays.append(pa.nulls(n, field.type) if value is None else _array(value, field.type, n))
    return pa.Table.from_arrays(arrays, schema=arrow_schema)


def _array(value: Any, kind: pa.DataType, n: int) -> pa.Array:
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        return value.cast(kind)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not pa.types.is_floating(kind):
        value = [None if np.isnan(v) else int(v) for v in value]
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return pa.array(value, pa.float64(), from_pandas=True).cast(kind)
    if isinstance(value, (str, int, float, bool)):
        value = [value] * n
    return pa.array(list(value) if isinstance(value, np.ndarray) and value.dtype == object else value, kind)


def logs(n: int, time: Any, **columns: Any) -> pa.Table:
    """``n`` log rows at ``time`` with the given columns (attributes as list of dicts)."""
    time_us = _to_us(time if np.ndim(time) else [time] * n)
    data: dict[str, Any] = {"severity_number": [9] * n, "service_name": ["app"] * n, **columns}
    data["time"] = pa.array(time_us, pa.int64()).cast(schema.TS)
    data["time_unix_nano"] = time_us * 1000
    data["dt"] = pa.array(time_us // 86_400_000_000, pa.int32()).cast(pa.date32())
    arrow_schema = schema.arrow_schema(schema.LOGS)
    arrays = [pa.nulls(n, f.type) if data.get(f.name) is None else _array(data[f.name], f.type, n)
              for f in arrow_schema]
    return pa.Table.from_arrays(arrays, schema=arrow_schema)


def eval_logs(span_ids: list[str], trace_ids: list[str], scores: Any, times: Any, name: str) -> pa.Table:
    """Evaluation-result log records (EVENT_EVALUATION_RESULT) scoring the given spans."""
    attrs = [[(sc.GEN_AI_EVALUATION_NAME, name), (sc.GEN_AI_EVALUATION_SCORE_VALUE, json.dumps(float(s)))]
             for s in scores]
    return logs(len(span_ids), times, span_id=span_ids, trace_id=trace_ids, attributes=attrs,
                event_name=[sc.EVENT_EVALUATION_RESULT] * len(span_ids))


def write_lake(lake_dir: Path, span_tables: list[pa.Table] = (), log_tables: list[pa.Table] = ()) -> Path:
    """Append the tables to a lake (one commit each) and return the lake directory."""
    writer = LakeWriter(lake_dir)
    position = 0
    for table in span_tables:
        position += 1
        writer.append(schema.SPANS, table, position)
    for table in log_tables:
        position += 1
        writer.append(schema.LOGS, table, position)
    return lake_dir


def hourly_times(start: dt.datetime, hours: int, per_hour: int, rng: np.random.Generator) -> np.ndarray:
    """``per_hour`` random start times (µs) inside each of ``hours`` hours from ``start``."""
    base = int(start.timestamp() * 1_000_000)
    hour_idx = np.repeat(np.arange(hours), per_hour)
    return base + hour_idx * 3_600_000_000 + rng.integers(0, 3_600_000_000, hours * per_hour)
