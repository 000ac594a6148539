"""Error classes and provider fallbacks on calls whose class is known by construction."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
from span_factory import NOW, spans, write_lake
from spanlake.analytics.errors import error_classes, provider_fallbacks
from spanlake.analytics.window import Window
from spanlake.collector.storage import schema
from spanlake.collector.storage.lake_writer import LakeWriter
from spanlake.instrumentation import semconv as sc

DAY = Window.last("24h", NOW)
T = NOW - dt.timedelta(hours=2)


def test_each_class_counted(lake_dir, snapshot):
    cases = [  # (error_type, status_code, http_status attr, finish_reasons, count, expected class)
        ("RateLimitError", "ERROR", "429", None, 5, "rate_limit"),
        ("InternalServerError", "ERROR", None, None, 4, "server_error"),
        (None, "ERROR", "503", None, 2, "server_error"),
        ("APITimeoutError", "ERROR", None, None, 3, "timeout"),
        (None, "UNSET", None, ["content_filter"], 2, "content_filter"),
        (None, "UNSET", None, ["refusal"], 6, "refusal"),
        (None, "UNSET", None, ["length"], 7, "truncated"),
        ("ValueError", "ERROR", None, None, 1, "other_error"),
        (None, "UNSET", None, ["stop"], 20, None),
    ]
    tables = []
    for i, (etype, status, http, finish, n, _) in enumerate(cases):
        attrs = [[(sc.HTTP_RESPONSE_STATUS_CODE, http)] if http else [] for _ in range(n)]
        tables.append(spans(n, T, seed=i, error_type=[etype] * n, status_code=status, attributes=attrs,
                            finish_reasons=[finish] * n, provider="openai"))
    write_lake(lake_dir, [pa.concat_tables(tables)])
    frame = error_classes(snapshot(), DAY, ["provider"])
    counts = frame.groupby("error_class")["count"].sum().to_dict()
    assert counts == {"rate_limit": 5, "server_error": 6, "timeout": 3, "content_filter": 2, "refusal": 6,
                      "truncated": 7, "other_error": 1}
    assert frame.loc[frame.error_class == "truncated", "rate"].iloc[0 ] == 7 / 50


def test_json_parse_failures_from_content(lake_dir, snapshot):
    n = 4
    attrs = [[(sc.GEN_AI_OUTPUT_TYPE, "json")]] * n
    table = spans(n, T, attributes=attrs)
    outputs = ['{"ok": 1}', "```json\n{}\n```", "sure! here it is", '[1, 2]']
    writer = LakeWriter(lake_dir)
    writer.append(schema.SPANS, table, 1)
    if schema.SPAN_CONTENT in schema.TABLES:
        content = pa.table({"trace_id": table.column("trace_id"), "span_id": table.column("span_id"),
                            "time": table.column("start_time"),
                            "output_messages": [json.dumps([{"role": "assistant", "parts": [
                                {"type": "text", "content": o}]}]) for o in outputs],
                            "dt": table.column("dt")})
        full = schema.arrow_schema(schema.SPAN_CONTENT)
        content = pa.table({f.name: content.column(f.name) if f.name in content.column_names
                            else pa.nulls(n, f.type) for f in full}, schema=full)
        writer.append(schema.SPAN_CONTENT, content, 2)
        frame = error_classes(snapshot(), DAY, ["provider"])
        assert frame.set_index("error_class").loc["json_parse", "count"] == 2


def test_fallback_pairs(lake_dir, snapshot):
    rng = np.random.default_rng(0)
    tables = []
    for i in range(5):  # openai fails, anthropic answers in the same trace
        trace = f"{i:032x}"
        first = spans(1, T + dt.timedelta(minutes=i), seed=i, trace_id=[trace], provider="openai",
                      status_code="ERROR", error_type="RateLimitError")
        second = spans(1, T + dt.timedelta(minutes=i, seconds=2), seed=100 + i, trace_id=[trace],
                       provider="anthropic", request_model="claude-sonnet-4-5")
        tables += [first, second]
    retry = f"{99:032x}"  # same-provider retry is not a fallback
    tables += [spans(1, T, seed=7, trace_id=[retry], status_code="ERROR", error_type="APITimeoutError"),
               spans(1, T + dt.timedelta(seconds=5), seed=8, trace_id=[retry])]
    write_lake(lake_dir, [pa.concat_tables(tables)])
    frame = provider_fallbacks(snapshot(), DAY)
    assert len(frame) == 1
    row = frame.iloc[0]
    assert (row.from_provider, row.to_provider, row["count"], row.traces) == ("openai", "anthropic", 5, 5)
    assert row.to_models == "claude-sonnet-4-5"
    _ = rng
