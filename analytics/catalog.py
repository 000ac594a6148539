"""The ``spanlake.duckdb`` catalog: a DuckDB file any client can open read-only.

It holds only views: one per lake table over the files of the snapshot analyze just read, and one
per result table. It is built in a new file and renamed over the old one, so a client never sees a
half-built catalog and no process ever holds the published file open for writing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
from spanlake.collector.storage import schema

CATALOG_FILE = "spanlake.duckdb"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _view(con: duckdb.DuckDBPyConnection, name: str, files: Sequence[str], arrow_schema: pa.Schema,
          hive: bool) -> None:
    """A view over ``files``; with no files, an empty view of the right columns (clients can still query it)."""
    if not files:
        con.register("_spanlake_empty", arrow_schema.empty_table())
        types = con.execute("DESCRIBE _spanlake_empty").fetchall()
        con.unregister("_spanlake_empty")
        columns = ", ".join(f"CAST(NULL AS {kind}) AS {_ident(col)}" for col, kind, *_ in types)
        con.execute(f"CREATE VIEW {_ident(name)} AS SELECT {columns} WHERE false")
        return
    file_list = ", ".join(_quote(str(Path(f).resolve())) for f in files)
    options = (f", hive_partitioning = true, hive_types = {{'{schema.PARTITION_COLUMN}': DATE}}" if hive
               else ", hive_partitioning = false")
    con.execute(f"CREATE VIEW {_ident(name)} AS SELECT * FROM read_parquet([{file_list}]{options}, "
                "union_by_name = true)")


def rebuild_catalog(data_dir: Path, lake_files: Mapping[str, Sequence[str]],
                    result_files: Mapping[str, tuple[Sequence[str], pa.Schema]]) -> Path:
    """Write a fresh catalog next to the old one and atomically rename it into place."""
    target = data_dir / CATALOG_FILE
    tmp = data_dir / (CATALOG_FILE + ".tmp")
    for leftover in (tmp, Path(str(tmp) + ".wal")):
        leftover.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        for table, files in lake_files.items():
            _view(con, table, files, schema.arrow_schema(table), hive=True)
        con.execute("CREATE SCHEMA results")
        for name, (files, arrow_schema) in result_files.items():
            _view(con, f"results_{name}", files, arrow_schema, hive=False)
            con.execute(f"CREATE VIEW results.{_ident(name)} AS SELECT * FROM {_ident('results_' + name)}")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    dir_fd = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return target
