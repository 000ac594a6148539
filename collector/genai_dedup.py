"""One LLM call seen by two instrumentations counts once: set ``duplicate_of`` at ingest.

Both spans stay stored; the later one (or, within one flush, the anthropic SDK's own span) gets
``duplicate_of`` = the kept span's id, so token and cost sums filter ``duplicate_of IS NULL``.
Patterns (../shared/research/genai-attribute-map.md §3.2, tests/fixtures/README.md): the same
response id (within a trace, or across traces within seconds: Langfuse exports them apart), an LLM
span whose parent is another emitter's LLM span (OpenInference → SDK), and, for the anthropic SDK's
spans, a sibling/other-trace span of another emitter with the same provider, tokens and status
starting within a second (OpenLLMetry events mode has no response id).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from spanlake.collector.normalize import LLM_OPERATIONS

SELF_TRACING_EMITTER = "anthropic-sdk"  # traces itself whenever a global TracerProvider exists
_COLUMNS = ("trace_id", "span_id", "parent_span_id", "emitter", "provider", "operation", "response_id",
            "start_time_unix_nano", "service_name", "status_code", "input_tokens", "output_tokens", "cost_usd")


@dataclass(frozen=True)
class _Seen:
    span_id: str
    trace_id: str
    emitter: str
    provider: str | None
    start_ns: int


class _Bounded(OrderedDict[Any, Any]):
    """A dict that forgets its oldest entries beyond ``capacity``."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        if len(self) > self.capacity:
            self.popitem(last=False)


class GenAIDedup:
    """Bounded memory of recent LLM-call spans, consulted once per flush of the spans table."""

    def __init__(self, capacity: int = 100_000, same_id_window_s: float = 5.0, fuzzy_window_s: float = 1.0) -> None:
        self._by_response = _Bounded(capacity)
        self._by_span = _Bounded(capacity)
        self._by_parent = _Bounded(capacity)
        self._by_shape = _Bounded(capacity)
        self._same_id_ns = int(same_id_window_s * 1e9)
        self._fuzzy_ns = int(fuzzy_window_s * 1e9)
        self.marked = 0

    def mark(self, table: pa.Table) -> pa.Table:
        """The table with ``duplicate_of`` set on rows that repeat an already kept LLM call."""
        if table.num_rows == 0 or "duplicate_of" not in table.column_names:
            return table
        mask = pc.and_(pc.is_valid(table["emitter"]), pc.is_in(table["operation"], pa.array(sorted(LLM_OPERATIONS))))
        mask = pc.fill_null(mask, False)
        indices = pc.indices_nonzero(mask).to_pylist()
        if not indices:
            return table
        rows = table.select(list(_COLUMNS)).take(pa.array(indices)).to_pylist()
        # Within one flush a priced span is kept over an unpriced one (OpenLLMetry events mode loses the
        # model), then the instrumentor's span (with the app's tags and content) over the SDK's own.
        order = sorted(range(len(rows)), key=lambda i: (rows[i]["cost_usd"] is None,
                                                        rows[i]["emitter"] == SELF_TRACING_EMITTER,
                                                        rows[i]["start_time_unix_nano"]))
        duplicate_of: list[str | None] = [None] * table.num_rows
        for i in order:
            kept = self._match(rows[i])
            if kept is not None:
                duplicate_of[indices[i]] = kept.span_id
                self.marked += 1
            else:
                self._remember(rows[i])
        if not any(duplicate_of):
            return table
        position = table.schema.get_field_index("duplicate_of")
        return table.set_column(position, table.schema.field(position), pa.array(duplicate_of, pa.string()))

    @staticmethod
    def _shape(row: dict[str, Any]) -> tuple[Any, ...]:
        return (row["service_name"], row["provider"], row["operation"], row["status_code"],
                row["input_tokens"], row["output_tokens"])

    def _match(self, row: dict[str, Any]) -> _Seen | None:
        emitter, start = row["emitter"], row["start_time_unix_nano"]
        rid = row["response_id"]
        other = self._by_response.get(rid) if rid else None
        if other is not None and other.emitter != emitter and (
                other.trace_id == row["trace_id"] or abs(other.start_ns - start) <= self._same_id_ns):
            return other
        for other in (self._by_span.get(row["parent_span_id"]), self._by_parent.get(row["span_id"])):
            if other is not None and other.emitter != emitter and other.provider == row["provider"]:
                return other
        for other in self._by_shape.get(self._shape(row), ()):
            if other.emitter != emitter and SELF_TRACING_EMITTER in (emitter, other.emitter) and abs(
                    other.start_ns - start) <= self._fuzzy_ns:
                return other
        return None

    def _remember(self, row: dict[str, Any]) -> None:
        seen = _Seen(row["span_id"], row["trace_id"], row["emitter"], row["provider"], row["start_time_unix_nano"])
        if row["response_id"]:
            self._by_response.put(row["response_id"], seen)
        self._by_span.put(row["span_id"], seen)
        if row["parent_span_id"]:
            self._by_parent.put(row["parent_span_id"], seen)
        shape = self._shape(row)
        recent = [s for s in self._by_shape.get(shape, ()) if abs(s.start_ns - seen.start_ns) <= self._fuzzy_ns]
        self._by_shape.put(shape, (*recent[-7:], seen))
