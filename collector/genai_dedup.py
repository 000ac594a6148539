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

from itertools import islice
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
from spanlake.collector.normalize import LLM_OPERATIONS

SELF_TRACING_EMITTER = "anthropic-sdk"  # traces itself whenever a global TracerProvider exists
SELF_TRACED_PROVIDER = "anthropic"
_COLUMNS = ("trace_id", "span_id", "parent_span_id", "emitter", "provider", "response_id", "start_time_unix_nano")
# Read only when the batch has Anthropic calls (shape matching) or SDK spans (ordering).
_SHAPE_COLUMNS = ("service_name", "operation", "status_code", "input_tokens", "output_tokens", "cost_usd")
_LLM_OPERATIONS = pa.array(sorted(LLM_OPERATIONS))


class _Seen(NamedTuple):
    span_id: str
    trace_id: str
    emitter: str
    provider: str | None
    start_ns: int
    response_id: str | None


def _trim(memory: dict[Any, Any], capacity: int) -> None:
    """Forget the oldest entries beyond ``capacity`` (dicts keep insertion order); once per flush."""
    excess = len(memory) - capacity
    if excess > 0:
        for key in list(islice(memory, excess)):
            del memory[key]


def _shape_matched(seen: _Seen) -> bool:
    """Whether a span may later be paired by shape: the anthropic SDK's own spans, and Anthropic spans of
    other emitters that carry no response id (spans with ids pair by id, or not at all)."""
    return seen.provider == SELF_TRACED_PROVIDER and (seen.emitter == SELF_TRACING_EMITTER or not seen.response_id)


class GenAIDedup:
    """Bounded memory of recent LLM-call spans, consulted once per flush of the spans table."""

    def __init__(self, capacity: int = 100_000, same_id_window_s: float = 5.0, fuzzy_window_s: float = 1.0) -> None:
        self._capacity = capacity
        self._by_response: dict[str, _Seen] = {}
        self._by_span: dict[str, _Seen] = {}
        self._by_parent: dict[str, _Seen] = {}
        self._by_shape: dict[tuple[Any, ...], tuple[_Seen, ...]] = {}
        self._same_id_ns = int(same_id_window_s * 1e9)
        self._fuzzy_ns = int(fuzzy_window_s * 1e9)
        self.marked = 0
        self._emitters: set[str] = set()  # every emitter ever remembered (only grows)

    def mark(self, table: pa.Table) -> pa.Table:
        """The table with ``duplicate_of`` set on rows that repeat an already kept LLM call."""
        if table.num_rows == 0 or "duplicate_of" not in table.column_names:
            return table
        mask = pc.fill_null(pc.and_(pc.is_valid(table["emitter"]), pc.is_in(table["operation"], _LLM_OPERATIONS)),
                            False)
        indices = pc.indices_nonzero(mask).to_pylist()
        if not indices:
            return table
        sub = table.select([*_COLUMNS, *_SHAPE_COLUMNS]).take(pa.array(indices))
        cols = {name: sub.column(name).to_pylist() for name in _COLUMNS}
        if SELF_TRACED_PROVIDER in cols["provider"]:
            cols.update({name: sub.column(name).to_pylist() for name in _SHAPE_COLUMNS})
        emitters = set(cols["emitter"])
        if len(emitters) == 1 and self._emitters <= emitters:
            # Every pattern pairs two different emitters: with one emitter in sight, nothing can match.
            self._remember_all(cols)
            return table
        order: Any = range(len(indices))
        if SELF_TRACING_EMITTER in cols["emitter"]:
            # Within one flush a priced span is kept over an unpriced one (OpenLLMetry events mode loses
            # the model), then the instrumentor's span (with tags and content) over the SDK's own.
            cost, emitter, start = cols["cost_usd"], cols["emitter"], cols["start_time_unix_nano"]
            order = sorted(order, key=lambda i: (cost[i] is None, emitter[i] == SELF_TRACING_EMITTER, start[i]))
        duplicate_of: list[str | None] = [None] * table.num_rows
        found = False
        for i in order:
            kept = self._match(cols, i)
            if kept is None:
                self._remember(cols, i)
            else:
                duplicate_of[indices[i]] = kept.span_id
                self.marked += 1
                found = True
        for memory in (self._by_response, self._by_span, self._by_parent, self._by_shape):
            _trim(memory, self._capacity)
        if not found:
            return table
        position = table.schema.get_field_index("duplicate_of")
        return table.set_column(position, table.schema.field(position), pa.array(duplicate_of, pa.string()))

    @staticmethod
    def _shape(cols: dict[str, list[Any]], i: int) -> tuple[Any, ...]:
        return (cols["service_name"][i], cols["operation"][i], cols["status_code"][i], cols["input_tokens"][i],
                cols["output_tokens"][i])

    def _match(self, cols: dict[str, list[Any]], i: int) -> _Seen | None:
        emitter, start, provider = cols["emitter"][i], cols["start_time_unix_nano"][i], cols["provider"][i]
        rid = cols["response_id"][i]
        other = self._by_response.get(rid) if rid else None
        if other is not None and other.emitter != emitter and (
                other.trace_id == cols["trace_id"][i] or abs(other.start_ns - start) <= self._same_id_ns):
            return other
        for other in (self._by_span.get(cols["parent_span_id"][i]), self._by_parent.get(cols["span_id"][i])):
            if other is not None and other.emitter != emitter and other.provider == provider:
                return other
        if provider != SELF_TRACED_PROVIDER:
            return None
        # Same shape, one side the SDK's own span, close in time, and not two different response ids;
        # the closest start wins (two calls of one shape a moment apart must not cross-match).
        candidates = [o for o in self._by_shape.get(self._shape(cols, i), ())
                      if o.emitter != emitter and SELF_TRACING_EMITTER in (emitter, o.emitter)
                      and abs(o.start_ns - start) <= self._fuzzy_ns
                      and not (rid and o.response_id and o.response_id != rid)]
        return min(candidates, key=lambda o: abs(o.start_ns - start)) if candidates else None

    def _remember_all(self, cols: dict[str, list[Any]]) -> None:
        """``_remember`` for every row, in bulk (the common case: one instrumentation)."""
        seen = list(map(_Seen._make, zip(cols["span_id"], cols["trace_id"], cols["emitter"], cols["provider"],
                                         cols["start_time_unix_nano"], cols["response_id"])))
        self._emitters.update(cols["emitter"])
        self._by_response.update((rid, s) for rid, s in zip(cols["response_id"], seen) if rid)
        self._by_span.update(zip(cols["span_id"], seen))
        self._by_parent.update((parent, s) for parent, s in zip(cols["parent_span_id"], seen) if parent)
        for i, s in enumerate(seen):
            if _shape_matched(s):
                self._remember_shape(cols, i, s)
        for memory in (self._by_response, self._by_span, self._by_parent, self._by_shape):
            _trim(memory, self._capacity)

    def _remember(self, cols: dict[str, list[Any]], i: int) -> None:
        seen = _Seen(cols["span_id"][i], cols["trace_id"][i], cols["emitter"][i], cols["provider"][i],
                     cols["start_time_unix_nano"][i], cols["response_id"][i])
        rid, parent = cols["response_id"][i], cols["parent_span_id"][i]
        if rid:
            self._by_response[rid] = seen
        self._by_span[seen.span_id] = seen
        if parent:
            self._by_parent[parent] = seen
        self._emitters.add(seen.emitter)
        if _shape_matched(seen):
            self._remember_shape(cols, i, seen)

    def _remember_shape(self, cols: dict[str, list[Any]], i: int, seen: _Seen) -> None:
        shape = self._shape(cols, i)
        recent = [s for s in self._by_shape.get(shape, ()) if abs(s.start_ns - seen.start_ns) <= self._fuzzy_ns]
        self._by_shape[shape] = (*recent[-7:], seen)
