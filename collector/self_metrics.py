"""The collector's own counters, rendered in the Prometheus text format for GET /metrics."""

from __future__ import annotations

import threading
from collections import defaultdict

_HELP = {
    "spanlake_received_total": ("counter", "Items received, by signal (spans, log records, metric points)."),
    "spanlake_accepted_total": ("counter", "Items acknowledged (durable in the write-ahead log), by signal."),
    "spanlake_rejected_total": ("counter", "Items rejected as invalid, by signal."),
    "spanlake_dropped_total": ("counter", "Items refused because the collector was overloaded, by signal."),
    "spanlake_requests_total": ("counter", "Export requests, by protocol and outcome."),
    "spanlake_written_total": ("counter", "Rows committed to the lake, by table."),
    "spanlake_duplicates_total": ("counter", "Spans dropped as duplicates of an already stored (trace_id, span_id)."),
    "spanlake_genai_duplicates_total": ("counter", "LLM calls seen by a second instrumentation (stored, marked duplicate_of)."),
    "spanlake_genai_unpriced_total": ("counter", "LLM calls whose model genai-prices does not know (cost left NULL)."),
    "spanlake_redacted_values_total": ("counter", "Stored values (attributes, names, bodies, content) that had a secret replaced."),
    "spanlake_quarantined_records_total": ("counter", "WAL records the lake writer could not convert, set aside "
                                           "in the quarantine (spanlake quarantine list), by signal."),
    "spanlake_writer_restarts_total": ("counter", "Lake-writer processes restarted after dying."),
    "spanlake_queue_bytes": ("gauge", "Write-ahead-log bytes acknowledged but not yet in the lake."),
    "spanlake_flush_seconds_last": ("gauge", "Duration of the last lake commit."),
    "spanlake_flush_seconds_sum": ("counter", "Total time spent in lake commits."),
    "spanlake_flush_total": ("counter", "Lake commits made."),
    "spanlake_lake_bytes": ("gauge", "Bytes of data files in the lake."),
    "spanlake_lake_files": ("gauge", "Data files in the lake."),
}


class SelfMetrics:
    """Thread-safe labelled counters and gauges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)

    def add(self, name: str, value: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] += value

    def set(self, name: str, value: float, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = value

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get((name, tuple(sorted(labels.items()))), 0.0)

    def render(self) -> str:
        """Prometheus text exposition format 0.0.4."""
        with self._lock:
            items = sorted(self._values.items())
        lines: list[str] = []
        seen: set[str] = set()
        for (name, labels), value in items:
            if name not in seen:
                kind, help_text = _HELP.get(name, ("untyped", name))
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
                seen.add(name)
            label_text = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{label_text}}} {value:g}" if label_text else f"{name} {value:g}")
        return "\n".join(lines) + "\n"
