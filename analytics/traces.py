"""One trace's spans, fast: the trace id is random (no file statistics help), so the caller's idea of
when the trace happened bounds the ``dt`` partitions read; without one, every partition is scanned.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import pyarrow as pa
from spanlake.analytics.lake import as_lake, to_arrow
from spanlake.analytics.window import Window, utc
from spanlake.collector.storage import schema


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
