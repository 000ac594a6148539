"""Render Arrow tables for a terminal: aligned text, CSV, or JSON (an array of row objects).

Whatever comes from the lake came from senders: terminal control characters in it (ESC sequences that
retitle the window, rewrite the screen or hide text; other C0/C1 controls; bidi overrides) are stripped.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import re
from typing import Any

import pyarrow as pa

# ESC sequences whole (CSI, OSC up to BEL/ST, DCS/SOS/PM/APC up to ST, two-character ones), then any other
# C0 control but tab and newline, DEL, C1 controls, and the bidi embedding/override/isolate characters.
_CONTROLS = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|[ -~]?)"
                       "|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """``text`` without terminal control sequences or characters (tab and newline stay)."""
    return _CONTROLS.sub("", text)


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
    return terminal_safe(str(value))


def format_table(table: pa.Table, fmt: str = "table", max_width: int = 60) -> str:
    """Render ``table`` as 'table', 'csv' or 'json' (control characters stripped; JSON escapes them)."""
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
