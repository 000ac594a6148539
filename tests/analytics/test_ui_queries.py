"""The analytics added for the viewer: trace list and one trace's content/scores, filter pickers, the
service scope, output histograms, eval series, model timeline, prompt versions and firing counts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from span_factory import NOW, eval_logs, spans, write_lake
from spanlake.analytics import drift, models, prompts, traces
from spanlake.analytics.alerts import COLUMNS as ALERT_COLUMNS
from spanlake.analytics.alerts import firing_counts
from spanlake.analytics.latency import latency_summary
from spanlake.analytics.scope import ScopedLake
from spanlake.analytics.window import Window
from spanlake.collector.storage import schema
from spanlake.collector.storage.lake_writer import LakeWriter
from spanlake.instrumentation import semconv as sc

DAY = Window.last("24h", NOW)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _times(n: int, hours_back: float) -> np.ndarray:
    return np.array([NOW - dt.timedelta(hours=hours_back) + dt.timedelta(seconds=10 * i) for i in range(n)],
                    dtype=object)


def _trace() -> pa.Table:
    ids = ["a000000000000001", "a000000000000002", "a000000000000003"]
    return spans(3, _times(3, 2), trace_id=[TRACE] * 3, span_id=ids, parent_span_id=[None, ids[0], ids[0]],
                 name=["POST /ask", "chat a", "chat b"], duration_ms=np.array([5000.0, 100.0, 200.0]),
                 request_model=[None, "gpt-4o", "gpt-4o"], provider=[None, "openai", "openai"],
                 cost_usd=[None, 0.5, 0.25], input_tokens=[None, 10, 20], output_tokens=[None, 1, 2],
                 status_code=["UNSET", "ERROR", "OK"], error_type=[None, "RateLimitError", None],
                 feature=[None, "ask", "ask"], service_name="api", tags=[[], [("team", "core")], []])


def _content() -> pa.Table:
    target = schema.arrow_schema(schema.SPAN_CONTENT)
    row = {"trace_id": TRACE, "span_id": "a000000000000003", "time": NOW - dt.timedelta(hours=2),
           "input_messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Where is Oslo?"}]}]),
           "output_messages": "[]", "source": "span", "dt": (NOW - dt.timedelta(hours=2)).date()}
    return pa.Table.from_pylist([{f.name: row.get(f.name) for f in target}], schema=target)


@pytest.fixture
def lake(lake_dir: Path, snapshot):  # type: ignore[no-untyped-def]
    other = spans(50, _times(50, 5), seed=1, service_name="worker", feature="batch")
    score = eval_logs(["a000000000000003"], [TRACE], [0.9], [NOW - dt.timedelta(hours=1)], "judge")
    write_lake(lake_dir, [_trace(), other], [score])
    LakeWriter(lake_dir).append(schema.SPAN_CONTENT, _content(), 10)
    return snapshot()


def test_trace_list_is_one_row_per_trace_with_sums(lake) -> None:  # type: ignore[no-untyped-def]
    frame = traces.trace_list(lake, DAY, {"feature": "ask"})
    assert list(frame["trace_id"]) == [TRACE]
    row = frame.iloc[0]
    assert (row["spans"], row["llm_calls"], row["errors"], row["status"]) == (3, 2, 1, "error")
    assert row["cost_usd"] == pytest.approx(0.75) and row["root_name"] == "POST /ask"
    assert row["duration_ms"] == pytest.approx(20_200.0), "root start to the last child's end (+20 s, 200 ms)"


def test_trace_list_filters(lake) -> None:  # type: ignore[no-untyped-def]
    assert list(traces.trace_list(lake, DAY, text="oslo")["trace_id"]) == [TRACE]
    assert traces.trace_list(lake, DAY, text="paris").empty
    assert list(traces.trace_list(lake, DAY, {"tag:team": "core"})["trace_id"]) == [TRACE]
    assert list(traces.trace_list(lake, DAY, status="error")["trace_id"]) == [TRACE]
    assert len(traces.trace_list(lake, DAY, status="ok")) == 50
    assert len(traces.trace_list(lake, DAY, limit=7)) == 7
    with pytest.raises(ValueError):
        traces.trace_list(lake, DAY, status="bad")


def test_one_trace_content_scores_and_window_bound_lookup(lake) -> None:  # type: ignore[no-untyped-def]
    around = NOW - dt.timedelta(hours=2)
    content = traces.trace_content(lake, TRACE, around)
    assert list(content["span_id"]) == ["a000000000000003"]
    scores = traces.trace_scores(lake, TRACE, around)
    assert list(scores["evaluation_name"]) == ["judge"] and scores["score"].iloc[0] == pytest.approx(0.9)
    assert traces.trace_spans_in(lake, TRACE, DAY).num_rows == 3
    assert traces.trace_spans_in(lake, TRACE, Window.last("1h", NOW - dt.timedelta(days=3))).num_rows == 0


def test_pickers_and_service_scope(lake) -> None:  # type: ignore[no-untyped-def]
    assert traces.dimension_values(lake, DAY, "service_name") == ["worker", "api"]
    assert traces.tag_keys(lake, DAY) == ["team"]
    scoped = ScopedLake(lake.con, ["api"])
    assert int(latency_summary(scoped, DAY, ())["count"].iloc[0]) == 2
    assert int(latency_summary(ScopedLake(lake.con), DAY, ())["count"].iloc[0]) == 52


def test_output_histograms_share_bins_and_sum_to_one(lake_dir: Path, snapshot) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    base = spans(300, _times(300, 40), seed=2, output_tokens=rng.integers(100, 120, 300), prompt_version="v1")
    cur = spans(300, _times(300, 10), seed=3, output_tokens=rng.integers(200, 240, 300), prompt_version="v1")
    write_lake(lake_dir, [base, cur])
    label = drift.output_drift(snapshot(), DAY, DAY.before(), ["prompt_version"])["group"].iloc[0]
    assert drift.parse_group_label(label) == {"prompt_version": "v1"}
    frame = drift.output_histograms(snapshot(), DAY, DAY.before(), drift.parse_group_label(label), bins=20)
    for _, part in frame.groupby("window"):
        assert part["share"].sum() == pytest.approx(1.0) and len(part) == 20
    assert frame.loc[frame["window"] == "baseline", "bin_start"].tolist() == \
        frame.loc[frame["window"] == "current", "bin_start"].tolist()
    current = frame[(frame["window"] == "current") & (frame["share"] > 0)]
    assert current["bin_start"].min() >= 195


def test_eval_series_model_timeline_and_prompt_versions(lake_dir: Path, snapshot) -> None:  # type: ignore[no-untyped-def]
    calls = spans(40, _times(40, 3), seed=4, request_model="gpt-4o",
                  response_model=["gpt-4o-2024-08-06"] * 20 + ["gpt-4o-2025-01-01"] * 20, prompt_name="p",
                  prompt_version=["v1"] * 20 + ["v2"] * 20)
    ids, trace_ids = calls.column("span_id").to_pylist(), calls.column("trace_id").to_pylist()
    feedback = eval_logs(ids, trace_ids, [1.0, 0.0] * 20, [NOW - dt.timedelta(minutes=30)] * 40,
                         sc.GEN_AI_EVALUATION_USER_FEEDBACK)
    write_lake(lake_dir, [calls], [feedback])
    series = drift.eval_timeseries(snapshot(), DAY)
    assert series["count"].sum() == 40 and series["positive_rate"].iloc[0] == pytest.approx(0.5)
    timeline = models.model_timeline(snapshot(), DAY)
    assert timeline.groupby("response_model")["calls"].sum().to_dict() == {"gpt-4o-2024-08-06": 20,
                                                                           "gpt-4o-2025-01-01": 20}
    versions = prompts.prompt_versions(snapshot(), DAY)
    assert list(versions["prompt_version"]) == ["v1", "v2"]
    assert prompts.default_arms(versions) == ("v2", "v1")


def test_firing_counts_follow_first_seen_and_resolution() -> None:
    hours = pd.date_range(NOW - dt.timedelta(hours=4), NOW, freq="h", tz="UTC")
    frame = pd.DataFrame([{c: None for c in ALERT_COLUMNS} | {"first_seen": NOW - dt.timedelta(hours=3),
                                                                "resolved_at": NOW - dt.timedelta(hours=1)},
                          {c: None for c in ALERT_COLUMNS} | {"first_seen": NOW - dt.timedelta(hours=2)}])
    assert firing_counts(frame, hours).tolist() == [0, 1, 2, 1, 1]
    assert firing_counts(None, hours).tolist() == [0] * 5
