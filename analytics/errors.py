"""Errors by class: rate limits, 5xx, timeouts, refusals, truncations, content filtering, JSON-parse
failures of calls that asked for JSON; and provider fallbacks (a failed call to one provider followed
in the same trace by a call to another), counted per pair.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
from spanlake.analytics.lake import Lake, as_lake, to_frame
from spanlake.analytics.window import Window
from spanlake.collector.storage import schema
from spanlake.instrumentation import semconv as sc

CLASSES = ("rate_limit", "server_error", "timeout", "content_filter", "refusal", "truncated", "json_parse",
           "other_error")
_SERVER_ERROR_TYPES = ("%internalserver%", "%serviceunavailable%", "%overloaded%", "%badgateway%")


def http_status(lake: Lake, t: ir.Table) -> ir.IntegerValue:
    """The provider call's HTTP status: the typed column when present, else the OTel attribute."""
    from_attr = t.attributes.get(sc.HTTP_RESPONSE_STATUS_CODE).try_cast("int32")
    return t.http_status.coalesce(from_attr) if lake.has(schema.SPANS, "http_status") else from_attr


def _ilike_any(column: ir.StringValue, patterns: Sequence[str]) -> ir.BooleanValue:
    result = column.ilike(patterns[0])
    for pattern in patterns[1:]:
        result = result | column.ilike(pattern)
    return result.fill_null(False)


def _finish(t: ir.Table, *reasons: str) -> ir.BooleanValue:
    result = t.finish_reasons.contains(reasons[0])
    for reason in reasons[1:]:
        result = result | t.finish_reasons.contains(reason)
    return result.fill_null(False)


def refusal(t: ir.Table) -> ir.BooleanValue:
    """The model declined to answer (OpenAI/Anthropic ``refusal`` finish/stop reason)."""
    return _finish(t, "refusal")


def asked_json(lake: Lake, t: ir.Table) -> ir.BooleanValue:
    """The call asked for JSON output (semconv gen_ai.output.type, or a response_format parameter)."""
    asked = (t.attributes.get(sc.GEN_AI_OUTPUT_TYPE) == sc.GEN_AI_OUTPUT_TYPE_JSON).fill_null(False)
    if lake.has(schema.SPANS, "request_params"):
        asked = asked | t.request_params.get("response_format").ilike("%json%").fill_null(False)
    return asked


def error_class(lake: Lake, t: ir.Table) -> ir.StringValue:
    """One class per call, most specific first; NULL for a clean call (JSON checks are added later)."""
    status = http_status(lake, t)
    etype = t.error_type
    return ibis.cases(
        (((status == 429).fill_null(False) | _ilike_any(etype, ("%ratelimit%", "429"))), "rate_limit"),
        ((status.between(500, 599).fill_null(False) | _ilike_any(etype, _SERVER_ERROR_TYPES)), "server_error"),
        (_ilike_any(etype, ("%timeout%", "%timedout%")) | _ilike_any(t.status_message, ("%timed out%",))
         , "timeout"),
        (_finish(t, "content_filter") | _ilike_any(etype, ("%contentfilter%", "%content_policy%")),
         "content_filter"),
        (refusal(t), "refusal"),
        (_finish(t, "length", "max_tokens"), "truncated"),
        (_ilike_any(etype, ("%json%",)) & asked_json(lake, t), "json_parse"),
        (lake.failed(t), "other_error"),
    )


def _text_of(messages_json: str | None) -> str | None:
    try:
        messages = json.loads(messages_json) if messages_json else None
    except json.JSONDecodeError:
        return None
    parts = [p.get("content") for m in messages or [] if isinstance(m, dict)
             for p in m.get("parts", []) if isinstance(p, dict) and isinstance(p.get("content"), str)]
    return "".join(parts) if parts else None


def _is_json(text: str) -> bool:
    stripped = text.strip()
    if stripped.startswith("```"):  # fenced answers are a common near-miss: still a failure to parse
        return False
    try:
        json.loads(stripped)
    except json.JSONDecodeError:
        return False
    return True


def json_failures(source: Any, window: Window, group_by: Sequence[str] = ("provider", "request_model")
                  ) -> pd.DataFrame:
    """Calls that asked for JSON and whose captured output text does not parse (content must be captured)."""
    lake = as_lake(source)
    columns = ["span_id", *group_by]
    if not lake.columns(schema.SPAN_CONTENT):
        return pd.DataFrame(columns=columns)
    t = lake.spans(window)
    t = t.filter(asked_json(lake, t), t.error_type.isnull())
    content = lake.table(schema.SPAN_CONTENT)
    content = content.filter(content.dt.between(ibis.literal(window.first_day), ibis.literal(window.last_day)))
    joined = t.join(content, t.span_id == content.span_id).select(
        t.span_id, *lake.dimensions(t, list(group_by)), content.output_messages)
    frame = to_frame(joined)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    failed = [text is not None and not _is_json(text) for text in frame["output_messages"].map(_text_of)]
    return frame.loc[failed, columns].reset_index(drop=True)


def error_classes(source: Any, window: Window, group_by: Sequence[str] = ("provider", "request_model")
                  ) -> pd.DataFrame:
    """Calls per error class and group, with the share of the group's calls and the money they cost."""
    lake = as_lake(source)
    t = lake.spans(window)
    t = t.mutate(error_class=error_class(lake, t))
    totals = to_frame(t.group_by(lake.dimensions(t, list(group_by))).aggregate(calls=t.count()))
    bad = t.filter(t.error_class.notnull())
    counted = to_frame(bad.group_by([*lake.dimensions(bad, list(group_by)), bad.error_class])
                       .aggregate(count=bad.count(), cost_usd=bad.cost_usd.sum().fill_null(0.0)))
    extra = json_failures(lake, window, group_by)
    if len(extra):
        more = extra.groupby(list(group_by), dropna=False).size().reset_index(name="count")
        more["error_class"], more["cost_usd"] = "json_parse", 0.0
        counted = pd.concat([counted, more], ignore_index=True)
    frame = counted.merge(totals, on=list(group_by), how="left")
    frame["rate"] = frame["count"] / frame["calls"]
    return frame.sort_values("count", ascending=False, ignore_index=True)


def provider_fallbacks(source: Any, window: Window) -> pd.DataFrame:
    """Failed call to one provider followed, in the same trace, by a call to another: counted per pair."""
    lake = as_lake(source)
    t = lake.spans(window)
    w = ibis.window(group_by=t.trace_id, order_by=[t.start_time, t.span_id])
    t = t.mutate(failed=lake.failed(t), next_provider=t.provider.lead().over(w),
                 next_model=t.request_model.lead().over(w))
    pairs = t.filter(t.failed, t.next_provider.notnull(), t.next_provider != t.provider)
    grouped = pairs.group_by(from_provider=pairs.provider, to_provider=pairs.next_provider).aggregate(
        count=pairs.count(), traces=pairs.trace_id.nunique(), example_trace_id=pairs.trace_id.max(),
        from_models=pairs.request_model.collect(distinct=True), to_models=pairs.next_model.collect(distinct=True))
    frame = to_frame(grouped)
    for col in ("from_models", "to_models"):
        frame[col] = frame[col].map(lambda v: ", ".join(sorted(str(x) for x in v)) if v is not None else "")
    return frame.sort_values("count", ascending=False, ignore_index=True)
