"""Right to erasure (``spanlake erase``): delete a person's or a trace's rows from spans, logs and span_content.

A request names spans (a predicate over ``spans``, user ids, or trace ids). It is resolved over one
snapshot to the traces those spans belong to; every row of those traces goes from ``span_content``,
``logs`` and ``spans`` (with ``spans_only``, the rows of those spans only; a user-level request also
removes logs that carry the user id in an attribute, with or without a trace). Each table loses them
by Delta deletes that rewrite only the files holding such rows, with the collector's writer
properties; a commit that races the live collector is retried. The replaced files stay on disk until
vacuum: the maintenance loop's (after ``vacuum_grace_s``), or right away with ``vacuum_now``, which
also deletes files abandoned by failed write attempts that still hold copies of the erased rows.
Every run is recorded in the ``erasures`` table: when, the filter as given and the rows deleted per
table, never the erased rows.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from spanlake.collector.genai_map import TAG_COLUMNS
from spanlake.collector.storage import schema
from spanlake.collector.storage.lake_writer import WRITER_PROPS, ensure_tables, retry_commit, table_path
from spanlake.collector.storage.reader import open_snapshot, sql_str

WHERE, USER_ID, TRACE_ID = "where", "user_id", "trace_id"
# Attribute keys a log record may carry its user id under: the same ones spans' user_id column is read from.
USER_KEYS: tuple[str, ...] = tuple(src.key for src in TAG_COLUMNS["user_id"])
# Deleted first to last: spans go last, so an erasure cut short is found again (from spans) when re-run.
ERASED_TABLES = (schema.SPAN_CONTENT, schema.LOGS, schema.SPANS)
IDS_PER_DELETE = 2000  # trace ids per Delta delete: keeps each predicate a few tens of kilobytes
MAX_COMMIT_ATTEMPTS = 60  # conflicts with the collector's appends, backing off up to 2 s: about two minutes
# An unreferenced file this old is abandoned: a write commits (or fails) within seconds of writing it.
ORPHAN_MIN_AGE_S = 10.0
_TRACE_ID = re.compile(r"[0-9a-f]{32}")


class ErasureError(ValueError):
    """An erasure request that cannot run as given (bad filter, bad id); nothing was deleted."""


@dataclass(frozen=True)
class ErasureRequest:
    """What to erase: ``kind`` is where (one predicate over spans), user_id or trace_id (one or more values)."""

    kind: str
    values: tuple[str, ...]
    spans_only: bool = False  # only the picked spans (and their logs and content), not their whole traces

    @property
    def filter_text(self) -> str:
        return self.values[0] if self.kind == WHERE else ", ".join(self.values)


@dataclass
class ErasurePlan:
    """A request resolved over one snapshot: the traces it covers and, per table, the delete predicates."""

    request: ErasureRequest
    trace_ids: list[str]
    predicates: dict[str, list[str]]
    counts: dict[str, int] = field(default_factory=dict)  # rows matching now, per table


@dataclass
class ErasureResult:
    plan: ErasurePlan
    deleted: dict[str, int]
    files_vacuumed: int
    erased_at: dt.datetime
    versions: dict[str, int]


def validate_where(where: str) -> str:
    """The predicate, checked to be one SQL expression: no statement separator, no comment, balanced
    parentheses (so it cannot close the WHERE it is put in), and one SELECT once put there."""
    text = where.strip()
    if not text:
        raise ErasureError("--where is empty")
    tokens = duckdb.tokenize(text)
    depth = 0
    for i, (start, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(text)
        if kind == duckdb.token_type.comment:
            raise ErasureError("--where must not contain SQL comments")
        if kind != duckdb.token_type.operator:
            continue
        for char in text[start:end]:
            if char == ";":
                raise ErasureError("--where must be one predicate, not several statements (found ';')")
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth < 0:
                raise ErasureError("--where has a ')' without its '('")
    if depth:
        raise ErasureError("--where has unbalanced parentheses")
    try:
        statements = duckdb.extract_statements(f"SELECT trace_id FROM spans WHERE ({text})")
    except duckdb.Error as exc:
        raise ErasureError(f"--where is not valid SQL: {exc}") from exc
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise ErasureError("--where must be one predicate")
    return text


def request_from(where: str | None, user_ids: Sequence[str] | None, trace_ids: Sequence[str] | None,
                 spans_only: bool = False) -> ErasureRequest:
    """The request one of ``--where``, ``--user-id``, ``--trace-id`` describes, validated."""
    given = [(k, v) for k, v in ((WHERE, where), (USER_ID, user_ids), (TRACE_ID, trace_ids)) if v]
    if len(given) != 1:
        raise ErasureError("give exactly one of --where, --user-id, --trace-id")
    kind, value = given[0]
    if spans_only and kind == TRACE_ID:
        raise ErasureError("--spans-only picks spans by --where or --user-id; --trace-id erases whole traces")
    if kind == WHERE:
        assert isinstance(value, str)
        return ErasureRequest(WHERE, (validate_where(value),), spans_only)
    values = tuple(dict.fromkeys(v.strip() for v in value))  # order kept, repeats dropped
    if any(not v for v in values):
        raise ErasureError(f"--{kind.replace('_', '-')} must not be empty")
    if kind == TRACE_ID:
        values = tuple(v.lower() for v in values)
        bad = [v for v in values if not _TRACE_ID.fullmatch(v)]
        if bad:
            raise ErasureError(f"--trace-id wants 32 hex characters, got {bad[0]!r}")
    return ErasureRequest(kind, values, spans_only)


def _in_list(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(sql_str(v) for v in values)})"


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), IDS_PER_DELETE):
        yield values[start:start + IDS_PER_DELETE]


def _user_attribute_predicate(user_ids: Sequence[str]) -> str:
    """Rows whose ``attributes`` carry one of ``user_ids`` under any user key (a SQL both DuckDB and Delta read)."""
    return " OR ".join(f"array_has(map_extract(attributes, {sql_str(key)}), {sql_str(user)})"
                       for key in USER_KEYS for user in user_ids)


def _resolve(con: duckdb.DuckDBPyConnection, request: ErasureRequest) -> list[tuple[str, str | None]]:
    """(trace_id, span_id) of the spans the request picks; span_id is None for a whole given trace."""
    if request.kind == TRACE_ID:
        return [(t, None) for t in request.values]
    if request.kind == USER_ID:
        where = _in_list("user_id", request.values)
    else:
        where = f"(\n{request.values[0]}\n)"
    try:
        return [(t, s) for t, s in con.execute(
            f"SELECT DISTINCT trace_id, span_id FROM {schema.SPANS} WHERE {where} AND trace_id IS NOT NULL "
            f"ORDER BY trace_id, span_id").fetchall()]
    except duckdb.Error as exc:
        raise ErasureError(f"--where failed over spans: {exc}") from exc


def _row_predicates(picked: list[tuple[str, str | None]], spans_only: bool) -> list[str]:
    """Delete predicates (chunks of an IN list) over trace_id, or over trace_id || span_id for ``spans_only``."""
    if spans_only:
        keys = sorted({t + s for t, s in picked if s is not None})
        return [_in_list("trace_id || span_id", chunk) for chunk in _chunks(keys)]
    return [_in_list("trace_id", chunk) for chunk in _chunks(sorted({t for t, _ in picked}))]


def plan_erasure(lake_dir: Path, request: ErasureRequest) -> ErasurePlan:
    """Resolve ``request`` over the current snapshot and count, per table, the rows it would delete."""
    if not DeltaTable.is_deltatable(str(table_path(lake_dir, schema.SPANS))):
        raise ErasureError(f"no lake at {lake_dir}")
    with open_snapshot(lake_dir) as snap:
        picked = _resolve(snap.con, request)
        rows = _row_predicates(picked, request.spans_only)
        predicates = {t: list(rows) for t in ERASED_TABLES}
        if request.kind == USER_ID:
            predicates[schema.LOGS].append(_user_attribute_predicate(request.values))
        counts = {}
        for table in ERASED_TABLES:
            files = snap.files.get(table, [])
            if not predicates[table] or not files:
                counts[table] = 0
                continue
            # The stored rows (what the delete removes), not the table's view, which may hide some.
            either = " OR ".join(f"({p})" for p in predicates[table])
            source = f"read_parquet([{', '.join(sql_str(f) for f in files)}], union_by_name = true)"
            counts[table] = int(snap.con.execute(f"SELECT count(*) FROM {source} WHERE {either}").fetchone()[0])
    return ErasurePlan(request, sorted({t for t, _ in picked}), predicates, counts)


def _delete(lake_dir: Path, table: str, predicate: str) -> int:
    """One Delta delete on ``table``, retried on commit conflicts; returns the rows it removed."""
    target = DeltaTable(str(table_path(lake_dir, table)))
    props = CommitProperties(max_commit_retries=50, custom_metadata={"spanlake.operation": "erase"})

    def commit() -> dict[str, int]:
        target.update_incremental()
        return target.delete(predicate, writer_properties=WRITER_PROPS, commit_properties=props)

    metrics = retry_commit(f"{table} erase", commit, max_attempts=MAX_COMMIT_ATTEMPTS)
    return int((metrics or {}).get("num_deleted_rows", 0))


def _unreferenced_files(lake_dir: Path, table: str) -> list[Path]:
    """Data files under the table's directory that its current version does not reference."""
    path = table_path(lake_dir, table)
    live = {Path(uri.removeprefix("file://")).resolve() for uri in DeltaTable(str(path)).file_uris()}
    return [f for f in path.rglob("*.parquet") if "_delta_log" not in f.parts and f.resolve() not in live]


def _holds_erased_rows(con: duckdb.DuckDBPyConnection, path: Path, predicates: Sequence[str]) -> bool:
    either = " OR ".join(f"({p})" for p in predicates)
    query = f"SELECT count(*) FROM read_parquet({sql_str(str(path))}) WHERE {either}"
    return bool(con.execute(query).fetchone()[0])


def _sweep_abandoned(lake_dir: Path, plan: ErasurePlan) -> int:
    """Delete files no commit references that still hold erased rows; returns how many.

    A write attempt that loses a commit race (an erasure's rewrite, a compaction, an append) leaves its
    file behind, never referenced, so vacuum never deletes it; a rewrite made before this erasure holds
    copies of the erased rows. A file is taken only once ORPHAN_MIN_AGE_S old: a write that is still
    committing (the collector appending a matching row that arrived after the plan) is never touched."""
    removed = 0
    with duckdb.connect(":memory:") as con:
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        for table in ERASED_TABLES:
            if not plan.predicates[table]:
                continue
            for path in _unreferenced_files(lake_dir, table):
                if not _holds_erased_rows(con, path, plan.predicates[table]):
                    continue
                age = time.time() - path.stat().st_mtime
                if age < ORPHAN_MIN_AGE_S:
                    time.sleep(ORPHAN_MIN_AGE_S - age)
                if path in _unreferenced_files(lake_dir, table):
                    path.unlink(missing_ok=True)
                    removed += 1
    return removed


def vacuum_now(lake_dir: Path, plan: ErasurePlan | None = None) -> int:
    """Delete from disk, now, the files the erased tables no longer reference; returns how many.

    Files a commit removed go without the grace period (a reader holding an older snapshot fails its
    next read of one; a new snapshot works). With ``plan``, files abandoned by failed write attempts
    that hold the erased rows go too (see :func:`_sweep_abandoned`)."""
    removed = 0
    for table in ERASED_TABLES:
        target = DeltaTable(str(table_path(lake_dir, table)))
        removed += len(target.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False))
    return removed + (_sweep_abandoned(lake_dir, plan) if plan is not None else 0)


def _record(lake_dir: Path, result: ErasureResult) -> None:
    """Append one row to the erasure log (no erased data: the filter as given and counts)."""
    ensure_tables(lake_dir, (schema.ERASURES,))
    request = result.plan.request
    row = {"erased_at": result.erased_at, "filter_kind": request.kind, "filter": request.filter_text,
           "scope": "spans" if request.spans_only else "traces", "traces": len(result.plan.trace_ids),
           "spans_deleted": result.deleted[schema.SPANS], "logs_deleted": result.deleted[schema.LOGS],
           "span_content_deleted": result.deleted[schema.SPAN_CONTENT], "files_vacuumed": result.files_vacuumed,
           "table_versions": json.dumps(result.versions, sort_keys=True)}
    data = pa.Table.from_pylist([row], schema=schema.arrow_schema(schema.ERASURES))
    target = DeltaTable(str(table_path(lake_dir, schema.ERASURES)))

    def commit() -> None:
        target.update_incremental()
        write_deltalake(target, data, mode="append", schema_mode="merge", writer_properties=WRITER_PROPS)

    retry_commit("erasures append", commit, max_attempts=MAX_COMMIT_ATTEMPTS)


def erase(lake_dir: Path, request: ErasureRequest, *, vacuum: bool = False) -> ErasureResult:
    """Delete the request's rows from span_content, logs and spans, optionally vacuum, and record it.

    Rows that match but reach the lake after the plan was made (a span of the user still in the
    collector's write-ahead log, a new trace) are not deleted: run the erasure again once they landed.
    Rows appended later to an erased trace are deleted if they are in the lake when its table's
    delete commits."""
    if not DeltaTable.is_deltatable(str(table_path(lake_dir, schema.SPANS))):
        raise ErasureError(f"no lake at {lake_dir}")
    ensure_tables(lake_dir)  # also limits an older lake's file statistics to time columns from now on
    plan = plan_erasure(lake_dir, request)
    deleted = {table: sum(_delete(lake_dir, table, p) for p in plan.predicates[table]) for table in ERASED_TABLES}
    versions = {table: DeltaTable(str(table_path(lake_dir, table))).version() for table in ERASED_TABLES}
    files = vacuum_now(lake_dir, plan) if vacuum else 0
    result = ErasureResult(plan, deleted, files, dt.datetime.now(dt.timezone.utc), versions)
    _record(lake_dir, result)
    return result


def list_erasures(lake_dir: Path) -> pa.Table:
    """The erasure log, oldest first (empty when nothing was ever erased)."""
    path = table_path(lake_dir, schema.ERASURES)
    if not DeltaTable.is_deltatable(str(path)):
        return schema.arrow_schema(schema.ERASURES).empty_table()
    table = pa.table(DeltaTable(str(path)).to_pyarrow_table())
    return table.select(schema.column_names(schema.ERASURES)).sort_by([("erased_at", "ascending")])
