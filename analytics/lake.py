"""The analytics' view of a reader snapshot: Ibis tables over its DuckDB views, windowed and pruned.

Every heavy aggregation is an Ibis expression over the tables returned here, so the same
definition compiles to DuckDB today and to Spark later. Every window filter also bounds the
``dt`` partition column (a filter on start_time alone does not prune partitions) and drops rows a
deduplicating normaliser marked as copies of another span (``duplicate_of``), when that column exists.
"""

from __future__ import annotations

import warnings
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir
from spanlake.analytics.window import Window
from spanlake.collector.storage import schema
from spanlake.instrumentation import semconv as sc

TAG_PREFIX = "tag:"
ATTR_PREFIX = "attr:"
INPUT_BUCKET = "input_bucket"
INPUT_BUCKET_EDGES = (1_000, 4_000, 16_000, 64_000)
"""Input-token bucket edges: context length strongly predicts latency, so latency is grouped by it."""


class Lake:
    """Ibis access to one snapshot's tables (spans, logs) with the columns that snapshot really has.

    Note: Ibis sets the connection's session TimeZone to UTC (everything in spanlake is UTC anyway).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.backend = ibis.duckdb.from_connection(con)
        self._columns: dict[str, frozenset[str]] = {}
        self._tables: dict[str, ir.Table] = {}

    def columns(self, table: str) -> frozenset[str]:
        """Column names of a table as stored now (colleagues add columns; code tolerates their absence)."""
        if table not in self._columns:
            known = {r[0] for r in self.con.execute("SHOW TABLES").fetchall()}
            rows = self.con.execute(f"DESCRIBE {table}").fetchall() if table in known else []
            self._columns[table] = frozenset(r[0] for r in rows)
        return self._columns[table]

    def has(self, table: str, column: str) -> bool:
        return column in self.columns(table)

    def table(self, name: str) -> ir.Table:
        """The Ibis table of a view, looked up once (Ibis 12 on DuckDB 2.0 warns about its own calls here)."""
        if name not in self._tables:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                self._tables[name] = self.backend.table(name)
        return self._tables[name]

    def spans(self, window: Window, llm_only: bool = True) -> ir.Table:
        """Spans started in ``window`` (partition-pruned), without duplicates; LLM calls only by default."""
        t = self.table(schema.SPANS)
        t = t.filter(t.dt.between(ibis.literal(window.first_day), ibis.literal(window.last_day)),
                     t.start_time >= ibis.literal(window.start), t.start_time < ibis.literal(window.end))
        if self.has(schema.SPANS, "duplicate_of"):
            t = t.filter(t.duplicate_of.isnull())
        if llm_only:
            t = t.filter(t.request_model.notnull() | t.provider.notnull())
        return t

    def logs(self, window: Window, event_name: str | None = None) -> ir.Table:
        """Log records timed in ``window`` (partition-pruned), optionally of one event name."""
        t = self.table(schema.LOGS)
        t = t.filter(t.dt.between(ibis.literal(window.first_day), ibis.literal(window.last_day)),
                     t.time >= ibis.literal(window.start), t.time < ibis.literal(window.end))
        if event_name is not None:
            t = t.filter(t.event_name == event_name)
        return t

    def dimension(self, t: ir.Table, name: str) -> ir.Value:
        """A grouping key by name: a span column, ``tag:<key>``, ``attr:<key>`` or ``input_bucket``."""
        if name.startswith(TAG_PREFIX):
            key = name.removeprefix(TAG_PREFIX)
            from_attrs = t.attributes.get(sc.SPANLAKE_TAG_PREFIX + key)
            value = t.tags.get(key).coalesce(from_attrs) if self.has(schema.SPANS, "tags") else from_attrs
            return value.name(name)
        if name.startswith(ATTR_PREFIX):
            return t.attributes.get(name.removeprefix(ATTR_PREFIX)).name(name)
        if name == INPUT_BUCKET:
            return input_bucket(t.input_tokens).name(name)
        if name not in self.columns(schema.SPANS) or name == "attributes":
            raise ValueError(f"unknown dimension {name!r}: use a span column, tag:<key>, attr:<key> or {INPUT_BUCKET}")
        return t[name]

    def dimensions(self, t: ir.Table, names: tuple[str, ...] | list[str]) -> list[ir.Value]:
        return [self.dimension(t, n) for n in names]

    def failed(self, t: ir.Table) -> ir.BooleanValue:
        """A call failed: ERROR status or an error type."""
        return (t.status_code == "ERROR") | t.error_type.notnull()


def input_bucket(tokens: ir.IntegerValue) -> ir.StringValue:
    """Input-token size class as a sortable label ('0-1k', '1k-4k', ... '64k+')."""
    labels = ["0-1k", "1k-4k", "4k-16k", "16k-64k", "64k+"]
    cases = [(tokens < edge, label) for edge, label in zip(INPUT_BUCKET_EDGES, labels)]
    return tokens.isnull().ifelse(ibis.null(str), ibis.cases(*cases, else_=labels[-1]))


def as_lake(source: Any) -> Lake:
    """Accept a Lake, a LakeSnapshot (anything with ``.con``) or a DuckDB connection."""
    if isinstance(source, Lake):
        return source
    con = getattr(source, "con", source)
    if not isinstance(con, duckdb.DuckDBPyConnection):
        raise TypeError(f"expected a LakeSnapshot, Lake or DuckDB connection, got {type(source).__name__}")
    return Lake(con)


def to_arrow(expr: ir.Table) -> Any:
    """Execute an Ibis expression on the snapshot's own DuckDB connection and return Arrow.

    Compiling and running the SQL ourselves keeps one code path (and avoids deprecated calls that
    Ibis's DuckDB backend still makes on DuckDB 2.0).
    """
    backend = expr._find_backend()
    table = backend.con.sql(str(backend.compile(expr))).to_arrow_table()
    return _plain_numbers(table)


def _plain_numbers(table: Any) -> Any:
    """DuckDB sums integers into HUGEINT/DECIMAL; analytics want int64 / float64."""
    import pyarrow as pa

    fields = []
    for f in table.schema:
        if pa.types.is_decimal(f.type):
            fields.append(pa.field(f.name, pa.int64() if f.type.scale == 0 else pa.float64()))
        else:
            fields.append(f)
    return table.cast(pa.schema(fields)) if fields != list(table.schema) else table


def to_frame(expr: ir.Table) -> Any:
    """Execute an expression into pandas, with every timestamp column tz-aware UTC."""
    frame = to_arrow(expr).to_pandas()
    for name in frame.columns:
        if str(frame[name].dtype).startswith("datetime64") and frame[name].dt.tz is None:
            frame[name] = frame[name].dt.tz_localize("UTC")
    return frame
