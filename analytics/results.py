"""Result tables in the lake: small Delta tables under ``<lake>/results/<name>``, replaced each run.

Every analyze run overwrites each result table in one Delta commit, so a reader sees the previous
run or the next, never half of one; old files are vacuumed after a grace period longer than a run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

RESULTS_DIR = "results"
VACUUM_GRACE_HOURS = 1


def results_dir(lake_dir: Path) -> Path:
    return lake_dir / RESULTS_DIR


def result_path(lake_dir: Path, name: str) -> Path:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bad result table name {name!r}")
    return results_dir(lake_dir) / name


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """A DataFrame as an Arrow table Delta accepts: no null-typed columns, microsecond UTC timestamps."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for f in table.schema:
        kind = f.type
        if pa.types.is_null(kind):
            kind = pa.string()
        elif pa.types.is_timestamp(kind):
            kind = pa.timestamp("us", tz="UTC")
        elif pa.types.is_large_string(kind):
            kind = pa.string()
        fields.append(pa.field(f.name, kind))
    return table.cast(pa.schema(fields))


def write_result(lake_dir: Path, name: str, frame: pd.DataFrame) -> None:
    """Replace result table ``name`` with ``frame`` (schema may change between versions of spanlake)."""
    path = result_path(lake_dir, name)
    path.mkdir(parents=True, exist_ok=True)
    write_deltalake(str(path), to_arrow(frame), mode="overwrite", schema_mode="overwrite")


def vacuum_results(lake_dir: Path) -> int:
    """Delete files older runs replaced, after the grace period; returns how many."""
    removed = 0
    for path in sorted(results_dir(lake_dir).glob("*")):
        if DeltaTable.is_deltatable(str(path)):
            removed += len(DeltaTable(str(path)).vacuum(retention_hours=VACUUM_GRACE_HOURS, dry_run=False,
                                                        enforce_retention_duration=False))
    return removed


def read_result(lake_dir: Path, name: str) -> pd.DataFrame | None:
    """The current version of a result table, or None before the first run wrote it."""
    path = result_path(lake_dir, name)
    if not DeltaTable.is_deltatable(str(path)):
        return None
    return DeltaTable(str(path)).to_pyarrow_table().to_pandas()


def result_files(lake_dir: Path) -> dict[str, tuple[list[str], pa.Schema]]:
    """Result table name → (data files of its current version, schema), for the DuckDB catalog."""
    files = {}
    for path in sorted(results_dir(lake_dir).glob("*")):
        if DeltaTable.is_deltatable(str(path)):
            table = DeltaTable(str(path))
            uris = [u.removeprefix("file://") for u in table.file_uris()]
            files[path.name] = (uris, pa.schema(table.schema().to_arrow()))
    return files
