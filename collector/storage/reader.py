"""The one way anyone reads the lake: an in-memory DuckDB over a consistent Delta snapshot.

Each snapshot pins the files of the tables' current Delta versions, so compaction and appends
that happen while it is open never show half-written files or double counts. Nothing here holds
a DuckDB database file open; no DuckDB extension is needed (none can be downloaded here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable
from spanlake.collector.storage import schema
from spanlake.collector.storage.lake_writer import table_path


def sql_str(text: str) -> str:
    """``text`` as a SQL string literal (quotes doubled), for file paths and values in generated SQL."""
    return "'" + text.replace("'", "''") + "'"


@dataclass
class LakeSnapshot:
    """A DuckDB connection whose views ``spans``, ``logs``, ``metric_points`` show one snapshot."""

    con: duckdb.DuckDBPyConnection
    versions: dict[str, int] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)

    def sql(self, query: str, params: Any = None) -> pa.Table:
        """Run a query and return an Arrow table."""
        relation = self.con.sql(query, params=params)
        return relation.to_arrow_table() if relation is not None else pa.table({})

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> LakeSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _view_sql(table: str, files: list[str]) -> str:
    file_list = ", ".join(sql_str(f) for f in files)
    columns = ", ".join(f'"{c}"' for c in schema.column_names(table))
    return (f"CREATE OR REPLACE VIEW {table} AS SELECT {columns} FROM read_parquet([{file_list}], "
            f"hive_partitioning = true, hive_types = {{'{schema.PARTITION_COLUMN}': DATE}}, union_by_name = true)")


def open_snapshot(lake_dir: Path, threads: int | None = None) -> LakeSnapshot:
    """Open an in-memory DuckDB with one view per table over the tables' current files."""
    con = duckdb.connect(":memory:")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    snap = LakeSnapshot(con)
    for table in schema.TABLES:
        path = table_path(lake_dir, table)
        files: list[str] = []
        if DeltaTable.is_deltatable(str(path)):
            delta = DeltaTable(str(path))
            snap.versions[table] = delta.version()
            files = [uri.removeprefix("file://") for uri in delta.file_uris()]
        snap.files[table] = files
        if files:
            con.execute(_view_sql(table, files))
        else:
            empty = schema.arrow_schema(table).empty_table()
            con.register(f"_empty_{table}", empty)
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM _empty_{table}")
    return snap


def search_content(snap: LakeSnapshot, text: str, *, since: Any = None, limit: int = 100) -> pa.Table:
    """Spans whose prompt, completion or system instructions contain ``text`` (case-insensitive substring).

    One row per span (content from span attributes preferred over content from log records), newest
    first: trace_id, span_id, time, service_name, input_messages, output_messages, system_instructions,
    source. ``since`` (a datetime) limits the scan to recent partitions.
    """
    where = "strpos(lower(coalesce(input_messages, '') || chr(10) || coalesce(output_messages, '') || chr(10) " \
            "|| coalesce(system_instructions, '')), lower($text)) > 0"
    params: dict[str, Any] = {"text": text, "limit": int(limit)}
    if since is not None:
        where += f" AND time >= $since AND {schema.PARTITION_COLUMN} >= CAST($since AS DATE)"
        params["since"] = since
    query = (f"SELECT trace_id, span_id, time, service_name, input_messages, output_messages, system_instructions, "
             f"source FROM {schema.SPAN_CONTENT} WHERE {where} "
             f"QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY source = 'span' DESC) = 1 "
             f"ORDER BY time DESC LIMIT $limit")
    return snap.sql(query, params)
