"""Engine portability and lake semantics shared by every analytic: the heavy aggregations are Ibis
expressions that compile for other engines, duplicates never count, tags group like columns."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pyarrow as pa
import pytest
from span_factory import NOW, spans, write_lake
from spanlake.analytics.anomalies import hourly_metrics_expr
from spanlake.analytics.cost import cost_expr, cost_summary
from spanlake.analytics.lake import Lake
from spanlake.analytics.latency import latency_expr
from spanlake.analytics.traces import trace_spans
from spanlake.analytics.window import Window
from spanlake.collector.storage import schema

DAY = Window.last("24h", NOW)


def test_heavy_aggregations_compile_for_another_engine(lake_dir, snapshot):
    write_lake(lake_dir, [spans(10, NOW - dt.timedelta(hours=1))])
    lake = Lake(snapshot().con)
    for expr in (latency_expr(lake, DAY, ["request_model", "input_bucket"], dt.timedelta(hours=1)),
                 cost_expr(lake, DAY, ["feature"], dt.timedelta(days=1)),
                 hourly_metrics_expr(lake, DAY, "feature")):
        sql = ibis.to_sql(expr, dialect="clickhouse")
        assert "quantile" in sql.lower() or "sum" in sql.lower()
        assert "dt" in sql  # the partition predicate is part of the definition


@pytest.mark.skipif("duplicate_of" not in schema.column_names(schema.SPANS), reason="no duplicate_of column")
def test_duplicates_count_once(lake_dir, snapshot):
    kept = spans(10, NOW - dt.timedelta(hours=1), cost_usd=np.full(10, 1.0))
    copies = spans(10, NOW - dt.timedelta(hours=1), seed=1, cost_usd=np.full(10, 1.0),
                   duplicate_of=kept.column("span_id"), trace_id=kept.column("trace_id"))
    write_lake(lake_dir, [pa.concat_tables([kept, copies])])
    snap = snapshot()
    assert cost_summary(snap, DAY, []).loc[0, "cost_usd"] == pytest.approx(10.0)
    one = kept.column("trace_id")[0].as_py()
    assert trace_spans(snap, one, NOW).num_rows == 2  # both copies stay visible in the trace


@pytest.mark.skipif("tags" not in schema.column_names(schema.SPANS), reason="no tags column")
def test_tag_from_tags_column_or_attribute(lake_dir, snapshot):
    tags = [[("team", "red")]] * 6 + [None] * 4
    attrs = [None] * 6 + [[("spanlake.tag.team", "blue")]] * 4
    write_lake(lake_dir, [spans(10, NOW - dt.timedelta(hours=1), cost_usd=np.full(10, 1.0), tags=tags,
                                attributes=attrs)])
    frame = cost_summary(snapshot(), DAY, ["tag:team"]).set_index("tag:team")
    assert frame.loc["red", "cost_usd"] == 6.0 and frame.loc["blue", "cost_usd"] == 4.0
