"""Renderers: a DataFrame in, a chart, table or conversation out. No data access here.

Charts are Altair (it ships with Streamlit) so a time axis, a waterfall and two overlaid
distributions all look alike; tables are ``st.dataframe`` with units in their column formats.
Text that came from spans (names, content, model and feature names, alert evidence) is shown as text:
``st.text``/``st.code``, or :func:`plain` inside markdown, never as markup of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

MONEY = st.column_config.NumberColumn(format="$%.4f")
MS = st.column_config.NumberColumn(format="%.0f ms")
SECONDS = st.column_config.NumberColumn(format="%.3f s")
PERCENT = st.column_config.NumberColumn(format="percent")
P_VALUE = st.column_config.NumberColumn(format="%.2g")
RATIO = st.column_config.NumberColumn(format="%.3g")
FORMATS: Mapping[str, Any] = {
    "cost_usd": MONEY, "failed_cost_usd": MONEY, "cost_per_request_mean": MONEY, "cost_per_request_p99": MONEY,
    "spend_usd": MONEY, "soft_usd": MONEY, "hard_usd": MONEY, "forecast_usd": MONEY, "usd_per_1k_tokens": MONEY,
    "duration_ms": MS, "duration_ms_mean": MS, "duration_ms_p50": MS, "duration_ms_p95": MS, "duration_ms_p99": MS,
    "ttft_s": SECONDS, "ttft_s_mean": SECONDS, "ttft_s_p50": SECONDS, "ttft_s_p95": SECONDS, "ttft_s_p99": SECONDS,
    "share": PERCENT, "rate": PERCENT, "error_rate": PERCENT, "rate_baseline": PERCENT, "rate_current": PERCENT,
    "ks_p": P_VALUE, "p_value": P_VALUE, "rate_p": P_VALUE, "psi": RATIO, "ks_d": RATIO, "cohens_d": RATIO,
    "mean_baseline": RATIO, "mean_current": RATIO, "change_pct": st.column_config.NumberColumn(format="%+.1f %%"),
    "control": RATIO, "candidate": RATIO, "score": RATIO,
}
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # all ASCII punctuation: CommonMark escapes each


def plain(value: object) -> str:
    """Span-derived text for a markdown context (st.markdown, badges, captions, labels): every ASCII
    punctuation backslash-escaped and line breaks flattened, so it renders as the text it is — no image
    beacons, links or autolinks, styling, colour directives, math or HTML."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)


STATUS_COLORS = alt.Scale(domain=["ok", "error"], range=["#4c78a8", "#e45756"])


def table(frame: pd.DataFrame, columns: Sequence[str] | None = None, key: str | None = None,
          **config: Any) -> Any:
    """A read-only table with money, milliseconds, seconds and shares formatted by column name."""
    shown = frame[[c for c in columns if c in frame.columns]] if columns else frame
    formats = {name: fmt for name, fmt in FORMATS.items() if name in shown.columns}
    formats.update(config.pop("column_config", {}))
    return st.dataframe(shown, hide_index=True, column_config=formats, key=key, **config)


def empty(message: str) -> None:
    st.caption(f"_{message}_")


def metric(label: str, value: str, series: Sequence[float] | None = None, help: str | None = None,
           delta: str | None = None, delta_color: str = "normal") -> None:
    """A headline number with its sparkline (the series over the window, oldest first)."""
    points = [float(v) for v in series] if series is not None else None
    st.metric(label, value, delta=delta, delta_color=delta_color, help=help, border=True, delta_arrow="off",
              chart_data=points if points else None, chart_type="area")


def time_chart(frame: pd.DataFrame, y: str, color: str | None = None, title: str = "", y_title: str | None = None,
               kind: str = "line", height: int = 260) -> None:
    """A metric over time buckets (``bucket`` column), one series per ``color`` value."""
    if frame.empty:
        empty(f"no data for {plain(title or y)}")
        return
    base = alt.Chart(frame, title=title or alt.Undefined, height=height)
    mark = base.mark_bar() if kind == "bar" else base.mark_line(point=len(frame) < 60)
    encoding: dict[str, Any] = {"x": alt.X("bucket:T", title=None), "y": alt.Y(f"{y}:Q", title=y_title or y),
                                "tooltip": ["bucket:T", f"{y}:Q"] + ([f"{color}:N"] if color else [])}
    if color:
        encoding["color"] = alt.Color(f"{color}:N", title=color)
    st.altair_chart(mark.encode(**encoding), width="stretch")


def bar_chart(frame: pd.DataFrame, category: str, value: str, title: str = "", color: str | None = None,
              percent: bool = False) -> None:
    """Horizontal bars, biggest first (what a ranking reads best as); ``color`` groups bars side by side."""
    if frame.empty:
        empty(f"no data for {plain(title or value)}")
        return
    chart = alt.Chart(frame, title=title or alt.Undefined, height=alt.Step(14 if color else 24))
    encoding: dict[str, Any] = {"y": alt.Y(f"{category}:N", sort="-x", title=None, axis=alt.Axis(labelLimit=320)),
                                "x": alt.X(f"{value}:Q", title=value, axis=alt.Axis(format="%") if percent else alt.Undefined),
                                "tooltip": [f"{category}:N", alt.Tooltip(f"{value}:Q", format=".1%" if percent else "")]}
    if color:
        encoding.update(color=alt.Color(f"{color}:N", title=None), yOffset=alt.YOffset(f"{color}:N"))
        encoding["tooltip"] = [*encoding["tooltip"], f"{color}:N"]
    st.altair_chart(chart.mark_bar().encode(**encoding), width="stretch")


def distributions(frame: pd.DataFrame, title: str, x_title: str) -> None:
    """Baseline and current distributions as overlaid step histograms (shares, so sizes compare)."""
    if frame.empty:
        empty("no values in either window")
        return
    chart = alt.Chart(frame, title=title, height=260).mark_bar(opacity=0.55, binSpacing=0).encode(
        x=alt.X("bin_start:Q", title=x_title, scale=alt.Scale(zero=False)), x2="bin_end:Q",
        y=alt.Y("share:Q", stack=None, title="share of calls", axis=alt.Axis(format="%")), y2=alt.datum(0),
        color=alt.Color("window:N", scale=alt.Scale(domain=["baseline", "current"], range=["#9ecae9", "#e45756"])),
        tooltip=["window:N", "bin_start:Q", "bin_end:Q", alt.Tooltip("share:Q", format=".1%"), "n:Q"])
    st.altair_chart(chart, width="stretch")


def span_rows(spans: pd.DataFrame) -> pd.DataFrame:
    """Spans with their waterfall geometry: offset/end from the trace start (ms), depth, a label, status."""
    start_ns = spans["start_time_unix_nano"].astype("int64")
    frame = spans.assign(offset_ms=(start_ns - start_ns.min()) / 1e6)
    frame["end_ms"] = frame["offset_ms"] + frame["duration_ms"].fillna(0)
    parents = dict(zip(frame["span_id"], frame["parent_span_id"]))
    frame["depth"] = [_depth(span_id, parents) for span_id in frame["span_id"]]
    frame["status"] = ["error" if s == "ERROR" or isinstance(e, str) else "ok"
                       for s, e in zip(frame["status_code"], frame["error_type"])]
    frame["label"] = [f"{i + 1:>2}. {'· ' * d}{n}" for i, (d, n) in enumerate(zip(frame["depth"], frame["name"]))]
    return frame


def _depth(span_id: str, parents: Mapping[str, Any], limit: int = 32) -> int:
    depth, current = 0, parents.get(span_id)
    while isinstance(current, str) and current in parents and depth < limit:
        depth, current = depth + 1, parents.get(current)
    return depth


def waterfall(rows: pd.DataFrame) -> None:
    """The trace's spans as bars on one time axis, in start order, indented by depth, errors in red."""
    shown = rows[["label", "offset_ms", "end_ms", "duration_ms", "status", "request_model", "cost_usd"]].copy()
    chart = alt.Chart(shown, height=alt.Step(28)).mark_bar(cornerRadius=2, height=18).encode(
        y=alt.Y("label:N", sort=list(shown["label"]), title=None, axis=alt.Axis(labelLimit=360)),
        x=alt.X("offset_ms:Q", title="ms since trace start"), x2="end_ms:Q",
        color=alt.Color("status:N", scale=STATUS_COLORS, legend=None),
        tooltip=["label:N", alt.Tooltip("duration_ms:Q", format=".0f"), "request_model:N", "cost_usd:Q"])
    st.altair_chart(chart, width="stretch")


def _messages(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, str) or not raw:
        return []
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return [{"role": "user", "parts": [{"type": "text", "content": raw}]}]
    return [m for m in value if isinstance(m, dict)] if isinstance(value, list) else []


def _part(part: Mapping[str, Any]) -> None:
    """One message part as text: a text part as it was said, any other part as its JSON."""
    if part.get("type") in (None, "text") and isinstance(part.get("content"), str):
        st.text(str(part["content"]))
    else:
        st.code(json.dumps(part, indent=2, default=str)[:4000], language="json")


def conversation(system: Any, inputs: Any, outputs: Any) -> None:
    """Captured messages as a chat: system instructions, the input turns, then the answer — as text, since
    what a model or user said is data, not markup (it may hold image beacons or links)."""
    instructions = _messages(system)
    if instructions:
        with st.chat_message("system", avatar=":material/settings:"):
            for p in instructions:
                _part(p)
    for message in [*_messages(inputs), *_messages(outputs)]:
        role = str(message.get("role") or "assistant")
        avatar = None if role in ("user", "assistant") else ":material/build:"  # tool and other roles
        with st.chat_message(role, avatar=avatar):
            for p in message.get("parts", []):
                if isinstance(p, dict):
                    _part(p)
            if message.get("finish_reason"):
                st.caption(f"finish reason: {plain(message['finish_reason'])}")


def duration_text(length: Any) -> str:
    """A timedelta as people say it: '24 h', '7 d', '90 min'."""
    minutes = int(length.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)} d"
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def badge(text: str, level: str) -> None:
    """A coloured one-liner: level 'ok', 'warn' or 'bad'."""
    show = {"ok": st.success, "warn": st.warning, "bad": st.error}[level]
    show(text)
