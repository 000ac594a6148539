"""Traces: find calls by any attribute or by what was said, then open one as a waterfall and a conversation.

A trace is linkable: ``?trace_id=<id>&at=<ISO start>`` (``at`` lets the view read one day's files only).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pandas as pd
import streamlit as st
from spanlake.ui import components as ui
from spanlake.ui import data
from spanlake.ui.sidebar import current_scope

LIST_LIMIT = 200
SPAN_FIELDS = ("name", "kind", "service_name", "operation", "provider", "request_model", "response_model",
               "status_code", "status_message", "error_type", "http_status", "finish_reasons", "feature", "user_id",
               "session_id", "prompt_name", "prompt_version", "emitter", "cost_source", "price_version")
LIST_COLUMNS = {
    "open": st.column_config.LinkColumn("", display_text="open", width="small", help="link to this trace"),
    "start_time": st.column_config.DatetimeColumn("started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "root_name": "root span", "duration_ms": st.column_config.NumberColumn("duration", format="%.0f ms"),
    "llm_calls": "LLM calls", "cost_usd": st.column_config.NumberColumn("cost", format="$%.4f"),
    "user_id": "user", "session_id": "session", "service_name": "service", "trace_id": "trace id",
}
scope = current_scope()


def pick(column: Any, label: str, dimension: str, free_text: bool = False) -> tuple[str, str] | None:
    """A selectbox of the values a dimension takes (typing a new one is allowed where there are many)."""
    value = column.selectbox(label, data.values_of(scope, dimension), index=None, placeholder="any",
                             key=f"f_{dimension}", accept_new_options=free_text)
    return (dimension, str(value)) if value else None


def filters() -> tuple[tuple[tuple[str, str], ...], str, str | None]:
    """The filter bar: span attributes, any tag, status and text in the content."""
    row = st.columns(4)
    chosen = [pick(row[0], "Model", "request_model"), pick(row[1], "Provider", "provider"),
              pick(row[2], "Feature", "feature"), pick(row[3], "Prompt version", "prompt_version")]
    row = st.columns(4)
    chosen += [pick(row[0], "User", "user_id", free_text=True), pick(row[1], "Session", "session_id", free_text=True)]
    status = row[2].selectbox("Status", ["error", "ok"], index=None, placeholder="any", key="f_status")
    text = row[3].text_input("Text in prompt or answer", key="f_text", placeholder="e.g. refund")
    row = st.columns(4)
    tag = row[0].selectbox("Tag", data.tag_keys(scope), index=None, placeholder="any tag", key="f_tag")
    if tag:
        chosen.append(pick(row[1], f"{ui.plain(tag)} =", f"tag:{tag}", free_text=True))  # a label is markdown
    return tuple(c for c in chosen if c), text.strip(), status


def trace_link(row: pd.Series) -> str:
    return f"traces?trace_id={row['trace_id']}&at={pd.Timestamp(row['start_time']).isoformat()}"


def trace_list() -> None:
    chosen, text, status = filters()
    frame = data.trace_list(scope, chosen, text, status, LIST_LIMIT)
    more = " — the list stops there: narrow the filters or the window for older ones" if len(frame) == LIST_LIMIT else ""
    st.caption(f"{len(frame)} newest matching traces{more}. Select a row, or open its link, to see the trace.")
    if frame.empty:
        ui.empty("No trace matches. Widen the time window or drop a filter.")
        return
    frame = frame.assign(open=frame.apply(trace_link, axis=1), tokens=frame["input_tokens"] + frame["output_tokens"])
    picked = ui.table(frame, ["open", "start_time", "root_name", "status", "duration_ms", "spans", "llm_calls",
                              "tokens", "cost_usd", "models", "feature", "user_id", "session_id", "service_name",
                              "trace_id"], key="trace_table", on_select="rerun", selection_mode="single-row",
                      column_config=LIST_COLUMNS)
    rows = picked.selection.rows if picked is not None else []
    if rows:
        chosen_row = frame.iloc[rows[0]]
        st.query_params["trace_id"] = chosen_row["trace_id"]
        st.query_params["at"] = pd.Timestamp(chosen_row["start_time"]).isoformat()
        st.rerun()


def at_param() -> dt.datetime | None:
    try:
        return pd.Timestamp(st.query_params["at"]).tz_convert("UTC").to_pydatetime() if "at" in st.query_params \
            else None
    except (ValueError, TypeError):
        return None


def span_fields(span: pd.Series) -> dict[str, Any]:
    """The span's typed fields that are set, then its raw attributes (what a reader searches for)."""
    fields = {k: span[k] for k in SPAN_FIELDS if k in span and _present(span[k])}
    fields["finish_reasons"] = list(fields["finish_reasons"]) if "finish_reasons" in fields else None
    attributes = dict(span["attributes"]) if _present(span.get("attributes")) else {}
    return {**{k: v for k, v in fields.items() if v is not None}, "attributes": attributes,
            "resource": dict(span["resource_attributes"]) if _present(span.get("resource_attributes")) else {}}


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (list, tuple)) or hasattr(value, "__len__") and not isinstance(value, str):
        return len(value) > 0
    return not pd.isna(value)


def span_detail(span: pd.Series, content: pd.DataFrame) -> None:
    """One span: its numbers, its conversation, its attributes."""
    row = st.columns(5)
    row[0].metric("Duration", f"{span['duration_ms']:,.0f} ms")
    row[1].metric("Tokens in / out", f"{_int(span['input_tokens'])} / {_int(span['output_tokens'])}")
    row[2].metric("Cost", f"${span['cost_usd']:.4f}" if _present(span["cost_usd"]) else "–")
    row[3].metric("TTFT", f"{span['ttft_s']:.2f} s" if _present(span["ttft_s"]) else "–")
    row[4].metric("Status", span["status"])
    messages = content[content["span_id"] == span["span_id"]] if len(content) else content
    if len(messages):
        m = messages.iloc[0]
        ui.conversation(m["system_instructions"], m["input_messages"], m["output_messages"])
    st.json(json.loads(json.dumps(span_fields(span), default=str)), expanded=False)


def _int(value: Any) -> str:
    return f"{int(value):,}" if _present(value) else "–"


def trace_view(trace_id: str) -> None:
    if st.button("← All traces", key="back"):
        for name in ("trace_id", "at"):
            st.query_params.pop(name, None)
        st.rerun()
    view = data.trace(scope, trace_id, at_param())
    st.subheader(f"Trace {ui.plain(trace_id)}")  # from the URL: shown as text, whatever a link carries
    if view.spans.empty:
        st.warning("No spans of this trace in the selected window. Widen the window, or open it from the list "
                   "(its link carries the trace's time).")
        return
    rows = ui.span_rows(view.spans)
    llm = rows[rows["request_model"].notna()]
    head = st.columns(5)
    head[0].metric("Duration", f"{rows['end_ms'].max():,.0f} ms")
    head[1].metric("Spans / LLM calls", f"{len(rows)} / {len(llm)}")
    head[2].metric("Tokens", f"{int(llm['input_tokens'].fillna(0).sum() + llm['output_tokens'].fillna(0).sum()):,}")
    head[3].metric("Cost", f"${rows['cost_usd'].fillna(0).sum():.4f}")
    head[4].metric("Errors", f"{int((rows['status'] == 'error').sum())}")
    ui.waterfall(rows)
    if len(view.scores):
        st.markdown("**Scores and feedback**")
        ui.table(view.scores, ["evaluation_name", "score", "label", "explanation", "span_id", "time"])
    talked = set(view.content["span_id"]) if len(view.content) else set()
    for _, span in rows.iterrows():
        title = f"{ui.plain(span['label'].strip())} · {span['duration_ms']:,.0f} ms" + (
            f" · {ui.plain(span['request_model'])}" if _present(span["request_model"]) else "") + (
            " · :red[error]" if span["status"] == "error" else "")
        with st.expander(title, expanded=span["span_id"] in talked or span["status"] == "error"):
            span_detail(span, view.content)


st.title("Traces")
selected = st.query_params.get("trace_id")
if selected:
    trace_view(selected.strip().lower())
else:
    trace_list()
