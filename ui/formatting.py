"""Render Arrow tables for a terminal: aligned text, CSV, or JSON (an array of row objects)."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from typing import Any

import pyarrow as pa


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=_json_default)
    return str(value)


def format_table(table: pa.Table, fmt: str = "table", max_width: int = 60) -> str:
    """Render ``table`` as 'table', 'csv' or 'json'."""
    rows = table.to_pylist()
    names = table.column_names
    if fmt == "json":
        return json.dumps(rows, default=_json_default)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(names)
        for row in rows:
            writer.writerow([_cell(row[n]) if row[n] is not None else "" for n in names])
        return buf.getvalue().rstrip("\n")
    cells = [[_cell(row[n])[:max_width] for n in names] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    line = "  ".join(n.ljust(w) for n, w in zip(names, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)
