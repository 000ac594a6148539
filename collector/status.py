"""`spanlake status`: what the lake holds and whether a collector is serving it."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from spanlake.collector.quarantine import STATUS_QUARANTINED, Quarantine
from spanlake.collector.server import read_ready_file
from spanlake.collector.settings import Settings
from spanlake.collector.storage import schema
from spanlake.collector.storage.reader import open_snapshot


def _collector_health(settings: Settings) -> dict[str, Any]:
    info = read_ready_file(settings.data_dir)
    if info is None:
        return {"running": False}
    url = f"http://{info['host']}:{info['http_port']}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            health = json.loads(resp.read())
        return {"running": True, **info, "health": health.get("status")}
    except OSError:
        return {"running": False, "stale_ready_file": info}


def lake_status(settings: Settings) -> dict[str, Any]:
    """Rows, files, Delta version and time range per table, plus the collector and WAL state."""
    tables: dict[str, Any] = {}
    with open_snapshot(settings.lake_dir) as snap:
        for table in schema.TABLES:
            time_col = schema.SORT_COLUMN[table]
            rows, first, last = snap.con.execute(
                f"SELECT count(*), min({time_col})::VARCHAR, max({time_col})::VARCHAR FROM {table}").fetchone()
            tables[table] = {"rows": rows, "files": len(snap.files[table]), "version": snap.versions.get(table),
                             "first": str(first) if first else None, "last": str(last) if last else None}
    wal_bytes = sum(p.stat().st_size for p in settings.wal_dir.rglob("*.wal")) if settings.wal_dir.exists() else 0
    entries = Quarantine(settings.quarantine_dir).entries()
    quarantine = {"records": len(entries), "awaiting_retry": sum(e.status == STATUS_QUARANTINED for e in entries)}
    return {"data_dir": str(settings.data_dir), "collector": _collector_health(settings),
            "tables": tables, "wal_bytes": wal_bytes, "quarantine": quarantine}


def render_status(status: dict[str, Any]) -> str:
    col = status["collector"]
    lines = [f"data dir: {status['data_dir']}"]
    if col.get("running"):
        lines.append(f"collector: running (pid {col['pid']}), OTLP/gRPC {col['host']}:{col['grpc_port']}, "
                     f"OTLP/HTTP {col['host']}:{col['http_port']}, health {col.get('health')}")
    else:
        lines.append("collector: not running")
    lines.append(f"write-ahead log: {status['wal_bytes']} bytes")
    q = status["quarantine"]
    lines.append(f"quarantine: {q['records']} record(s) set aside, {q['awaiting_retry']} awaiting retry"
                 + (" (spanlake quarantine list)" if q["records"] else ""))
    for table, t in status["tables"].items():
        lines.append(f"{table:14s} {t['rows']:>12,d} rows  {t['files']:>5d} files  version {t['version']}  "
                     f"{t['first'] or '-'} .. {t['last'] or '-'}")
    return "\n".join(lines)
