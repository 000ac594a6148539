"""Traces: the trace list (filtered by any tag, status or content text) and one trace's spans, content and
scores. One trace's spans, fast: the trace id is random (no file statistics help), so the caller's idea of
when the trace happened bounds the ``dt`` partitions read; without one, every partition is scanned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from spanlake.analytics.lake import Lake, as_lake, to_arrow, to_frame
from spanlake.analytics.window import Window, utc
from spanlake.collector.storage import schema
from spanlake.instrumentation import semconv as sc


def trace_spans(source: Any, trace_id: str, around: dt.datetime | None = None,
                slack: dt.timedelta = dt.timedelta(hours=2)) -> pa.Table:
    """Every span of ``trace_id`` (duplicates included: both copies stay visible), in start order.

    With ``around`` (any span's start, e.g. the root's, as a trace list shows it) only spans starting
    within ``slack`` of it are read: partitions and row groups outside are skipped (files are sorted
    by start_time). Pass a larger ``slack`` for traces that run longer than two hours.
    """
    lake = as_lake(source)
    t = lake.table(schema.SPANS)
    if around is not None:
        window = Window(utc(around) - slack, utc(around) + slack)
        t = t.filter(t.dt.between(ibis.literal(window.first_day), ibis.literal(window.last_day)),
                     t.start_time.between(ibis.literal(window.start), ibis.literal(window.end)))
    t = t.filter(t.trace_id == trace_id.lower())
    return to_arrow(t.order_by([t.start_time, t.span_id]))


TRACE_FILTERS = ("service_name", "request_model", "provider", "feature", "user_id", "session_id", "prompt_name",
                 "prompt_version")
"""Span columns the trace list filters on (plus any ``tag:<key>``/``attr:<key>``, status and content text)."""
STATUSES = ("error", "ok")
TRACE_COLUMNS = ["trace_id", "start_time", "root_name", "service_name", "duration_ms", "spans", "llm_calls",
                 "input_tokens", "output_tokens", "cost_usd", "errors", "ttft_s", "models", "feature", "user_id",
                 "session_id", "prompt_version", "status"]


def _around(window: Window) -> tuple[dt.datetime, dt.timedelta]:
    """``trace_spans`` arguments that read exactly ``window``'s partitions (plus the usual slack)."""
    half = window.duration / 2
    return window.start + half, half + dt.timedelta(hours=2)


def trace_spans_in(source: Any, trace_id: str, window: Window) -> pa.Table:
    """One trace's spans when only a window is known (a deep link without a time): its partitions only."""
    around, slack = _around(window)
    return trace_spans(source, trace_id, around, slack)


def content_trace_ids(lake: Lake, window: Window, text: str) -> ir.Table:
    """Trace ids whose prompt, completion or system instructions contain ``text`` (case-insensitive).

    The same match as the reader's ``search_content``, as an expression the trace list can semi-join.
    """
    c = lake.table(schema.SPAN_CONTENT)
    c = c.filter(c.dt.between(ibis.literal(window.first_day), ibis.literal(window.last_day)),
                 c.time >= ibis.literal(window.start), c.time < ibis.literal(window.end))
    haystack = (c.input_messages.fill_null("") + "\n" + c.output_messages.fill_null("") + "\n"
                + c.system_instructions.fill_null("")).lower()
    return c.filter(haystack.contains(text.lower())).select("trace_id").distinct()


def _matching(lake: Lake, t: ir.Table, filters: Mapping[str, str | None], status: str | None) -> ir.Table:
    for name, value in filters.items():
        if value not in (None, ""):
            t = t.filter(lake.dimension(t, name) == value)
    if status == "error":
        t = t.filter(lake.failed(t))
    return t


def _trace_metrics(lake: Lake, t: ir.Table) -> dict[str, ir.Value]:
    end_ns = t.start_time_unix_nano + (t.duration_ms.fill_null(0) * 1e6).cast("int64")
    return {"start_time": t.start_time.min(), "root_name": t.name.argmin(t.start_time),
            "service_name": t.service_name.argmin(t.start_time),
            "duration_ms": (end_ns.max() - t.start_time_unix_nano.min()) / 1e6, "spans": t.count(),
            "llm_calls": t.request_model.count(), "input_tokens": t.input_tokens.sum(),
            "output_tokens": t.output_tokens.sum(), "cost_usd": t.cost_usd.sum(),
            "errors": lake.failed(t).cast("int64").sum(), "ttft_s": t.ttft_s.min(),
            "models": t.request_model.collect(distinct=True), "feature": t.feature.max(),
            "user_id": t.user_id.max(), "session_id": t.session_id.max(), "prompt_version": t.prompt_version.max()}


def trace_list(source: Any, window: Window, filters: Mapping[str, str | None] | None = None,
               text: str | None = None, status: str | None = None, limit: int = 200,
               slack: dt.timedelta = dt.timedelta(hours=2)) -> pd.DataFrame:
    """The newest ``limit`` traces in ``window`` with a span matching every filter, one row per trace.

    ``filters`` maps a dimension (a span column, ``tag:<k>``, ``attr:<k>``) to the value wanted;
    ``status`` 'error' keeps traces with a failing matching span, 'ok' traces without any failure;
    ``text`` keeps traces whose captured content contains it. Two passes keep it fast on a big lake:
    the newest matching trace ids first, then the spans of only those traces, read from ``slack``
    before the oldest chosen trace's newest span onwards (like :func:`trace_spans`).
    """
    if status not in (None, *STATUSES):
        raise ValueError(f"status must be one of {STATUSES}")
    lake = as_lake(source)
    wanted = limit * 5 if status == "ok" else limit
    chosen = _newest_traces(lake, window, filters or {}, text, status, wanted)
    if chosen.empty:
        return pd.DataFrame(columns=TRACE_COLUMNS)
    since = max(window.start, utc(chosen["last_start"].min().to_pydatetime()) - slack)
    spans = lake.spans(Window(since, window.end), llm_only=False)
    spans = spans.filter(spans.trace_id.isin(list(chosen["trace_id"])))
    frame = to_frame(spans.group_by("trace_id").aggregate(**_trace_metrics(lake, spans)))
    frame["status"] = frame["errors"].map(lambda n: "error" if n else "ok")
    if status == "ok":
        frame = frame[frame["status"] == "ok"]
    frame["models"] = frame["models"].map(lambda v: ", ".join(sorted(str(x) for x in v)) if v is not None else "")
    frame = frame.sort_values("start_time", ascending=False, ignore_index=True).head(limit)
    return frame[TRACE_COLUMNS]


def _newest_traces(lake: Lake, window: Window, filters: Mapping[str, str | None], text: str | None,
                   status: str | None, wanted: int, spans_per_trace: int = 10) -> pd.DataFrame:
    """trace_id and last_start of the ``wanted`` traces whose newest matching span is newest.

    The newest ``wanted × spans_per_trace`` matching spans are a cheap top-k; only when they hold fewer
    than ``wanted`` traces (very long traces) is every matching span grouped.
    """
    matched = _matching(lake, lake.spans(window, llm_only=False), filters, status)
    if text:
        matched = matched.filter(matched.trace_id.isin(content_trace_ids(lake, window, text).trace_id))
    sample = wanted * spans_per_trace
    newest = to_frame(matched.select("trace_id", "start_time").order_by(ibis.desc("start_time")).limit(sample))
    if len(newest) == sample and newest["trace_id"].nunique() < wanted:
        grouped = matched.group_by("trace_id").aggregate(last_start=matched.start_time.max())
        return to_frame(grouped.order_by(ibis.desc("last_start")).limit(wanted))
    last = newest.groupby("trace_id", as_index=False)["start_time"].max().rename(columns={"start_time": "last_start"})
    return last.sort_values("last_start", ascending=False, ignore_index=True).head(wanted)


def trace_content(source: Any, trace_id: str, around: dt.datetime, slack: dt.timedelta = dt.timedelta(hours=2)
                  ) -> pd.DataFrame:
    """Captured messages of one trace's spans (span attributes preferred over log records), one row per span."""
    lake = as_lake(source)
    if not lake.columns(schema.SPAN_CONTENT):
        return pd.DataFrame(columns=["span_id", "input_messages", "output_messages", "system_instructions"])
    window = Window(utc(around) - slack, utc(around) + slack)
    c = lake.table(schema.SPAN_CONTENT)
    c = c.filter(c.dt.between(ibis.literal(window.first_day), ibis.literal(window.last_day)),
                 c.trace_id == trace_id.lower())
    frame = to_frame(c.select("span_id", "input_messages", "output_messages", "system_instructions", "source"))
    frame = frame.sort_values("source", key=lambda s: s != "span").drop_duplicates("span_id")
    return frame.drop(columns="source").reset_index(drop=True)


def trace_scores(source: Any, trace_id: str, around: dt.datetime, slack: dt.timedelta = dt.timedelta(days=2)
                 ) -> pd.DataFrame:
    """Evaluation results and feedback recorded against one trace's spans (they may come later: wider slack)."""
    lake = as_lake(source)
    window = Window(utc(around) - dt.timedelta(hours=2), utc(around) + slack)
    logs = lake.logs(window, sc.EVENT_EVALUATION_RESULT)
    logs = logs.filter(logs.trace_id == trace_id.lower())
    return to_frame(logs.select(
        "span_id", "time", evaluation_name=logs.attributes.get(sc.GEN_AI_EVALUATION_NAME),
        score=logs.attributes.get(sc.GEN_AI_EVALUATION_SCORE_VALUE).try_cast("float64"),
        label=logs.attributes.get(sc.GEN_AI_EVALUATION_SCORE_LABEL),
        explanation=logs.attributes.get(sc.GEN_AI_EVALUATION_EXPLANATION)).order_by("time"))


def dimension_values(source: Any, window: Window, dimension: str, limit: int = 200, llm_only: bool = False
                     ) -> list[str]:
    """The values ``dimension`` takes in ``window``, busiest first (for filter pickers)."""
    lake = as_lake(source)
    t = lake.spans(window, llm_only=llm_only)
    t = t.select(value=lake.dimension(t, dimension))
    t = t.filter(t.value.notnull())
    grouped = t.group_by("value").aggregate(n=t.count()).order_by(ibis.desc("n")).limit(limit)
    return [str(v) for v in to_frame(grouped)["value"]]


def tag_keys(source: Any, window: Window, limit: int = 100) -> list[str]:
    """Tag keys present in ``window`` (the ``tags`` column), most used first."""
    lake = as_lake(source)
    if not lake.has(schema.SPANS, "tags"):
        return []
    t = lake.spans(window, llm_only=False)
    keys = t.filter(t.tags.notnull()).select(key=t.tags.keys().unnest())
    grouped = keys.group_by("key").aggregate(n=keys.count()).order_by(ibis.desc("n")).limit(limit)
    return [str(v) for v in to_frame(grouped)["key"]]
