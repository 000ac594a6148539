"""The GenAI normaliser: a flush of spans → the typed GenAI columns, whatever the emitter.

Per span, only content is handled as it arrives (it must leave the attributes before they are
stored). Everything else runs once per flush over the attribute map column (``attr_index``): the
emitter of each row (scope name, else key presence), each emitter's declarative map
(``genai_map.py``) applied to its rows as whole columns, then the known semantic fixes (inclusive
input tokens, TTFT only on streams) and prices. Rare cases (errors, span-event TTFT, JSON-text
sources) are read span by span for the rows that have them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from spanlake.collector import content as ct
from spanlake.collector.attr_index import CONVERTER_TYPES, AttrIndex, map_distinct, scatter
from spanlake.collector.attributes import encode_value
from spanlake.collector.genai_batch import SpanBatch, SpanContent, is_true, null_column, valid, where
from spanlake.collector.genai_errors import error_details
from spanlake.collector.genai_map import (
    ALL_EMITTERS,
    BY_KEY,
    OPENLLMETRY,
    PLAIN,
    EmitterMap,
    Src,
    emitter_for_scope,
    emitter_for_span,
    finish_reason,
    to_int,
    to_str,
)
from spanlake.collector.genai_quirks import events_mode_streams, off_by_one_stream, openllmetry_anthropic_0_62
from spanlake.collector.genai_tags import params_and_tags
from spanlake.collector.genai_ttft import ttft_of
from spanlake.collector.pricing import PRICE_SOURCE, PRICE_VERSION, PriceBook
from spanlake.instrumentation import semconv as sc

GENAI_COLUMNS: tuple[str, ...] = (
    "operation", "provider", "request_model", "response_model", "response_id", "input_tokens",
    "output_tokens", "total_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens",
    "ttft_s", "is_stream", "finish_reasons", "user_id", "session_id", "feature", "prompt_name",
    "prompt_version", "error_type", "cost_usd", "output_chars", "emitter", "request_params", "tags",
    "prompt_template", "http_status", "ttft_source", "cost_source", "price_version", "cost_suspect",
)
# Token counts beyond this are not a real call's (the attribute guard rejects them at the span; this
# catches values read from inside JSON text): nulled, so no sum or price is driven by them.
MAX_TOKENS = 10**9
DEFAULT_MAX_CALL_COST_USD = 1000.0
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
# gen_ai.operation.name values of the semconv (1.37-1.41); other emitters' kinds are mapped onto these.
SEMCONV_OPERATIONS = LLM_OPERATIONS | {"execute_tool", "invoke_agent", "create_agent", "invoke_workflow",
                                       "retrieval"}
_STREAMABLE = frozenset({"chat", "text_completion", "generate_content"})

EMITTERS: tuple[EmitterMap, ...] = (*ALL_EMITTERS, PLAIN)
_INDEX = {e.name: i for i, e in enumerate(EMITTERS)}
_PLAIN = _INDEX[PLAIN.name]
_OPENLLMETRY = _INDEX[OPENLLMETRY.name]
_MAPPED_COLUMNS = tuple(dict.fromkeys(c for e in EMITTERS for c in e.columns))
_CONTENT_KEYS = frozenset(k for keys in ct.SPAN_CONTENT_KEYS.values() for k in keys)
# Content keys that a map also reads a column from (OpenInference's response id is in output.value).
_CONTENT_SOURCE_KEYS = tuple(_CONTENT_KEYS & {s.key for e in EMITTERS for srcs in e.columns.values() for s in srcs})


class _Rows:
    """Row masks of one batch: which emitter each row belongs to, and which rows are errors."""

    def __init__(self, emitter_of_row: np.ndarray, batch: SpanBatch) -> None:
        self.n = len(emitter_of_row)
        self.emitter_of_row = emitter_of_row
        self.present = [int(i) for i in np.unique(emitter_of_row)]
        self._masks: dict[int, np.ndarray] = {}
        self.genai = emitter_of_row != _PLAIN
        self.error = np.asarray(pc.equal(pa.array(batch.status_codes, pa.string()), "ERROR")
                                .to_numpy(zero_copy_only=False), bool)

    def of(self, index: int) -> np.ndarray:
        found = self._masks.get(index)
        if found is None:
            found = self._masks[index] = self.emitter_of_row == index
        return found

    def only(self, index: int) -> bool:
        return self.present == [index]


def _canonical_finish_reasons(lists: pa.Array) -> pa.Array:
    """Every finish reason in the semconv enum (distinct values mapped once, list shape unchanged)."""
    if lists.null_count == len(lists) or len(lists.values) == 0:
        return lists
    lists = pa.concat_arrays([lists])  # unsliced, so offsets start at 0 and a null mask may be given
    encoded = lists.values.dictionary_encode()
    canonical = pa.array([finish_reason(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return pa.ListArray.from_arrays(lists.offsets, canonical.take(encoded.indices), mask=lists.is_null())


def _json_value(text: str | None, path: tuple[str, ...]) -> Any:
    """The value at ``path`` inside JSON text (None when absent or not JSON)."""
    try:
        value = json.loads(text) if text is not None else None
    except (json.JSONDecodeError, RecursionError):
        return None
    for step in path:
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def _source(ix: AttrIndex, src: Src) -> pa.Array | None:
    """One source's typed values per row (None when no row carries its key)."""
    if ix.code(src.key) is None and src.key not in _CONTENT_SOURCE_KEYS:
        return None
    if not src.path:
        return ix.typed(src.key, src.convert)
    texts = ix.values(src.key)
    rows = np.flatnonzero(valid(texts))
    if not len(rows):
        return None
    values = []
    for row in rows:
        raw = _json_value(texts[int(row)].as_py(), src.path)
        values.append(src.convert(raw) if raw is not None else None)
    out_type = CONVERTER_TYPES.get(src.convert, pa.string())
    return scatter(pa.nulls(ix.rows, out_type), rows, values)


def _coalesced(ix: AttrIndex, sources: Sequence[Src], cache: dict[Src, pa.Array | None]) -> pa.Array | None:
    """Per row, the first source present whose value converts."""
    arrays = []
    for src in sources:
        if src not in cache:
            cache[src] = _source(ix, src)
        if cache[src] is not None:
            arrays.append(cache[src])
    if not arrays:
        return None
    return arrays[0] if len(arrays) == 1 else pc.coalesce(*arrays)


class GenAINormalizer:
    """Per writer process: the emitter cache, the price book and the pending content rows."""

    def __init__(self, prices: PriceBook | None = None, content: ct.ContentCollector | None = None,
                 max_call_cost_usd: float = DEFAULT_MAX_CALL_COST_USD) -> None:
        self.prices = prices if prices is not None else PriceBook()
        self.max_call_cost_usd = max_call_cost_usd
        self.content = content if content is not None else ct.ContentCollector()
        self._scopes: dict[str | None, EmitterMap | None] = {}

    def counters(self) -> dict[str, int]:
        return {"genai_unpriced": self.prices.unpriced}

    def _scope_emitter(self, scope_name: str | None) -> EmitterMap | None:
        try:
            return self._scopes[scope_name]
        except KeyError:
            found = self._scopes[scope_name] = emitter_for_scope(scope_name)
            return found

    # --- per span, as it arrives -----------------------------------------------------------------
    def take_content(self, attrs: dict[str, Any], scope_name: str | None) -> SpanContent | None:
        """Remove the content an emitter put on a span's attributes (before they are stored)."""
        if _CONTENT_KEYS.isdisjoint(attrs):
            return None
        emitter = self._scope_emitter(scope_name) or emitter_for_span(attrs)
        kept = {k: encode_value(attrs[k]) for k in _CONTENT_SOURCE_KEYS if k in attrs}
        return SpanContent(emitter, ct.from_span(emitter.content, attrs), kept)

    def log(self, event_name: str | None, attrs: Mapping[str, Any], body: Any, trace_id: bytes, span_id: bytes,
            time_ns: int, service: str | None) -> None:
        """Content from a GenAI log record, joined to its span by ids (records without ids cannot be)."""
        if event_name not in ct.CONTENT_EVENTS or not any(trace_id) or not any(span_id):
            return
        found = ct.from_log(event_name, attrs, body)
        if found is not None:
            self.content.add_log((trace_id.hex(), span_id.hex()), time_ns // 1000, service, found)

    # --- per flush -------------------------------------------------------------------------------
    def columns(self, batch: SpanBatch) -> dict[str, pa.Array]:
        """The typed GenAI columns of a flush of spans, row-aligned (absent columns are all NULL)."""
        overrides: dict[str, dict[int, str]] = {}
        for row, taken in batch.content.items():
            for key, value in taken.kept.items():
                overrides.setdefault(key, {})[row] = value
        ix = AttrIndex(batch.attrs, overrides)
        rows = _Rows(self._emitter_of_rows(batch, ix), batch)
        cols = self._mapped(ix, rows)
        n = rows.n
        get = lambda name: cols.get(name, null_column(n, name))
        names = pa.array([e.name for e in EMITTERS[:-1]] + [None], pa.string())
        cols["emitter"] = names.take(pa.array(rows.emitter_of_row))
        self._operation_and_provider(cols, get, batch, rows)
        if "finish_reasons" in cols:
            cols["finish_reasons"] = _canonical_finish_reasons(cols["finish_reasons"])
        cols["request_params"], cols["tags"], tag_feature = params_and_tags(ix, rows.emitter_of_row, EMITTERS)
        tag_feature = pc.if_else(pc.equal(tag_feature, ""), pa.scalar(None, pa.string()), tag_feature)
        cols["feature"] = pc.coalesce(get("feature"), where(rows.genai, tag_feature, null_column(n, "feature")))
        if rows.genai.any():
            quirky = (openllmetry_anthropic_0_62(batch, rows.of(_OPENLLMETRY)) if _OPENLLMETRY in rows.present
                      else np.zeros(n, bool))
            if quirky.any():
                streamed = events_mode_streams(get, quirky)
                if streamed.any():
                    cols["is_stream"] = where(streamed, pa.array(np.ones(n, bool)), get("is_stream"))
            self._stream_and_ttft(cols, get, ix, batch, rows)
            self._fix_tokens(cols, get, rows, quirky)
        self._errors(cols, get, ix, batch, rows)
        self._content(cols, get, batch, rows)
        self._price(cols, get, batch, rows)
        return cols

    def _emitter_of_rows(self, batch: SpanBatch, ix: AttrIndex) -> np.ndarray:
        """Index into EMITTERS per row: by scope name, else by the keys the span carries."""
        by_scope = {s: (_INDEX[e.name] if (e := self._scope_emitter(s)) is not None else -1)
                    for s in set(batch.scope_names)}
        out = np.array([by_scope[s] for s in batch.scope_names], np.int64)
        unknown = out < 0
        if unknown.any():
            by_keys = np.full(ix.rows, _PLAIN, np.int64)
            by_keys[ix.rows_with_keys(lambda k: k.startswith(sc.GEN_AI_PREFIX))] = _INDEX["otel-genai"]
            for key, emitter in reversed(BY_KEY):  # the first match in emitter_for_span's order wins
                by_keys[ix.has(key)] = _INDEX[emitter.name]
            out[unknown] = by_keys[unknown]
        for row, taken in batch.content.items():  # detected before content keys left the attributes
            out[row] = _INDEX[taken.emitter.name]
        return out

    @staticmethod
    def _mapped(ix: AttrIndex, rows: _Rows) -> dict[str, pa.Array]:
        """Each emitter's map applied to its rows: per column, the first source present that converts."""
        cols: dict[str, pa.Array] = {}
        cache: dict[Src, pa.Array | None] = {}
        for column in _MAPPED_COLUMNS:
            acc: pa.Array | None = None
            for index in rows.present:
                sources = EMITTERS[index].columns.get(column)
                value = _coalesced(ix, sources, cache) if sources else None
                if value is None:
                    continue
                acc = value if rows.only(index) else where(rows.of(index), value, acc if acc is not None
                                                           else pa.nulls(rows.n, value.type))
            if acc is not None:
                cols[column] = acc
        return cols

    @staticmethod
    def _operation_and_provider(cols: dict[str, pa.Array], get: Any, batch: SpanBatch, rows: _Rows) -> None:
        """Emitter operation kinds → semconv names; operation/model from a semconv span name; provider fallbacks."""
        for index in rows.present:
            emitter, mask = EMITTERS[index], rows.of(index)
            if emitter.operation_values and "operation" in cols:
                mapped = map_distinct(cols["operation"], lambda v, kinds=emitter.operation_values: kinds.get(
                    v, v if v in SEMCONV_OPERATIONS else None), pa.string())
                cols["operation"] = where(mask, mapped, cols["operation"])
            if emitter.operation_from_name:
                _operation_from_name(cols, get, batch, mask & ~valid(get("operation")))
            if emitter.provider_from_scope or emitter.provider_from_name:
                _provider_fallback(cols, get, emitter, batch, mask & ~valid(get("provider")))
            if emitter.model_is_request_on_error and "response_model" in cols:
                moved = mask & rows.error & valid(cols["response_model"])
                if moved.any():
                    cols["request_model"] = where(moved, cols["response_model"], get("request_model"))
                    cols["response_model"] = where(moved, null_column(rows.n, "response_model"),
                                                   cols["response_model"])

    @staticmethod
    def _stream_and_ttft(cols: dict[str, pa.Array], get: Any, ix: AttrIndex, batch: SpanBatch, rows: _Rows) -> None:
        """Stream flag (inferred where the emitter allows) and TTFT, kept only on streamed calls."""
        n = rows.n
        stream_acc, ttft_acc = null_column(n, "is_stream"), null_column(n, "ttft_s")
        source_acc = null_column(n, "ttft_source")
        streamable = is_true(pc.is_in(get("operation"), pa.array(sorted(_STREAMABLE))))
        sent = get("is_stream")
        sent_true, absent = is_true(sent), ~valid(sent)
        sent_false = is_true(pc.invert(sent))
        for index in rows.present:
            if index == _PLAIN:
                continue
            emitter, mask = EMITTERS[index], rows.of(index)
            ttft, source = ttft_of(emitter, ix, batch, mask)
            has_ttft = valid(ttft)
            # A first-chunk attribute/event/timestamp only exists on streamed calls (not so for openlit).
            now_true = absent & has_ttft if emitter.ttft_implies_stream else np.zeros(n, bool)
            now_false = absent & ~now_true & streamable if emitter.stream_absent_means_false else np.zeros(n, bool)
            streamed, not_streamed = sent_true | now_true, sent_false | now_false
            stream = pc.if_else(pa.array(streamed), True, pc.if_else(pa.array(not_streamed), False,
                                                                      pa.scalar(None, pa.bool_())))
            # Never a TTFT on a call that was not streamed (openlit stamps every span).
            keep = streamed & has_ttft & is_true(pc.greater_equal(ttft, 0.0))
            stream_acc = where(mask, stream, stream_acc)
            ttft_acc = where(mask & keep, ttft, ttft_acc)
            source_acc = where(mask & keep, source, source_acc)
        cols["is_stream"], cols["ttft_s"], cols["ttft_source"] = stream_acc, ttft_acc, source_acc

    @staticmethod
    def _fix_tokens(cols: dict[str, pa.Array], get: Any, rows: _Rows, quirky: np.ndarray) -> None:
        """Inclusive token semantics (semconv): input includes cache read/write, total = input + output;
        ``quirky`` rows (OpenLLMetry <= 0.62 Anthropic) lose the +1 it adds to streamed output tokens."""
        inp, out = get("input_tokens"), get("output_tokens")
        recompute = np.zeros(rows.n, bool)
        for index in rows.present:
            emitter, mask = EMITTERS[index], rows.of(index)
            if emitter.input_excludes_cache_for:
                # openlit reports Anthropic's raw input_tokens, which exclude cached tokens (fixture: 10 vs 13).
                fix = mask & valid(inp) & is_true(pc.is_in(get("provider"),
                                                          pa.array(sorted(emitter.input_excludes_cache_for))))
                if fix.any():
                    added = pc.add(pc.add(inp, pc.fill_null(get("cached_input_tokens"), 0)),
                                   pc.fill_null(get("cache_write_tokens"), 0))
                    inp = where(fix, added, inp)
                    recompute |= fix
        if quirky.any():
            fix = off_by_one_stream(get, out, quirky)
            if fix.any():
                out = where(fix, pc.subtract(out, 1), out)
                recompute |= fix
        inp, out = _plausible_tokens(inp), _plausible_tokens(out)
        for name in ("cached_input_tokens", "cache_write_tokens", "reasoning_tokens"):
            if name in cols:
                cols[name] = _plausible_tokens(cols[name])
        total = _plausible_tokens(get("total_tokens"))
        either = rows.genai & (valid(inp) | valid(out))
        redo = either & (recompute | ~valid(total))
        if redo.any():
            total = where(redo, pc.add(pc.fill_null(inp, 0), pc.fill_null(out, 0)), total)
        cols["input_tokens"], cols["output_tokens"], cols["total_tokens"] = inp, out, total

    @staticmethod
    def _errors(cols: dict[str, pa.Array], get: Any, ix: AttrIndex, batch: SpanBatch, rows: _Rows) -> None:
        """HTTP status (attributes), and for failed GenAI spans the error class and status from the error text."""
        sources = [a for a in (ix.typed(sc.HTTP_RESPONSE_STATUS_CODE, to_int), ix.typed(sc.HTTP_STATUS_CODE_OLD, to_int))
                   if a.null_count < rows.n]
        status = (pc.coalesce(*sources) if len(sources) > 1 else sources[0] if sources
                  else null_column(rows.n, "http_status"))
        failed = np.flatnonzero(rows.genai & rows.error)
        if len(failed):
            error_type, lf_message = get("error_type"), ix.values(sc.LANGFUSE_STATUS_MESSAGE)
            types, codes = error_type.to_pylist(), status.to_pylist()
            for row in (int(r) for r in failed):
                message = batch.status_messages[row] or (lf_message[row].as_py() or "")
                types[row], codes[row] = error_details(types[row], codes[row], message, batch.events[row])
            cols["error_type"] = pa.array(types, pa.string())
            status = pa.array(codes, pa.int64())
        cols["http_status"] = status

    def _content(self, cols: dict[str, pa.Array], get: Any, batch: SpanBatch, rows: _Rows) -> None:
        """Queue span content for span_content; output length of LLM calls from it (or from log records)."""
        if not batch.content and not self.content.has_log_content:
            return
        for row, taken in batch.content.items():
            if taken.content is not None:
                self.content.add_span((batch.trace_ids[row], batch.span_ids[row]), batch.starts[row] // 1000,
                                      batch.services[row], taken.content)
        ops = get("operation").to_pylist()
        chars: dict[int, int | None] = {}
        for row, taken in batch.content.items():
            if taken.content is not None and ops[row] in _STREAMABLE:
                chars[row] = ct.output_chars(taken.content.output)
        if self.content.has_log_content:  # a span's content may have come first, as log records
            for row in (i for i, op in enumerate(ops) if op in _STREAMABLE and i not in chars):
                if rows.genai[row] and (row not in batch.content or batch.content[row].content is None):
                    chars[row] = self.content.output_chars_seen((batch.trace_ids[row], batch.span_ids[row]))
        cols["output_chars"] = scatter(null_column(rows.n, "output_chars"), list(chars), list(chars.values()))

    def _price(self, cols: dict[str, pa.Array], get: Any, batch: SpanBatch, rows: _Rows) -> None:
        """Cost of LLM calls: the emitter's own figure wins, else genai-prices (NULL and counted if unknown)."""
        n = rows.n
        llm = rows.genai & is_true(pc.is_in(get("operation"), pa.array(sorted(LLM_OPERATIONS))))
        if not llm.any():
            return
        reported = llm & valid(get("cost_usd"))
        inp, out = get("input_tokens"), get("output_tokens")
        wanted = np.flatnonzero(llm & ~reported & (valid(inp) | valid(out)))
        cost = get("cost_usd")
        if len(wanted):
            computed = self.prices.cost_array(
                get("provider").take(wanted), pc.coalesce(get("response_model"), get("request_model")).take(wanted),
                *(pc.fill_null(get(c), 0).take(wanted) for c in ("input_tokens", "output_tokens",
                                                                  "cached_input_tokens", "cache_write_tokens")),
                np.asarray(batch.starts, np.int64)[wanted])
            cost = scatter(cost, wanted, computed.to_pylist())
        priced = np.zeros(n, bool)
        priced[wanted] = True
        priced &= valid(cost)
        source = where(reported, pa.array(np.full(n, "emitter", object), pa.string()),
                       null_column(n, "cost_source"))
        version = where(reported, cols["emitter"], null_column(n, "price_version"))
        cols["cost_usd"] = cost
        cols["cost_suspect"] = cost_suspect(cost, self.max_call_cost_usd)
        cols["cost_source"] = where(priced, pa.array(np.full(n, PRICE_SOURCE, object), pa.string()), source)
        cols["price_version"] = where(priced, pa.array(np.full(n, PRICE_VERSION, object), pa.string()), version)


def _plausible_tokens(counts: pa.Array) -> pa.Array:
    """Token counts with values outside 0..MAX_TOKENS nulled."""
    if counts.null_count == len(counts):
        return counts
    bad = pc.or_(pc.less(counts, 0), pc.greater(counts, MAX_TOKENS))
    if not pc.any(bad).as_py():
        return counts
    return pc.if_else(pc.fill_null(bad, False), pa.scalar(None, counts.type), counts)


def cost_suspect(cost: pa.Array, max_call_cost_usd: float) -> pa.Array:
    """Per row: is the cost implausible for one call (above the bound, negative, NaN or infinite); NULL without a cost."""
    cost = cost.cast(pa.float64())
    finite = pc.is_finite(cost)
    return pc.or_kleene(pc.invert(finite), pc.or_(pc.greater(cost, max_call_cost_usd), pc.less(cost, 0.0)))


def _operation_from_name(cols: dict[str, pa.Array], get: Any, batch: SpanBatch, rows: np.ndarray) -> None:
    """Operation and request model from a semconv span name ``{operation} {model}``."""
    ops, models = {}, {}
    current_models = get("request_model")
    for row in (int(r) for r in np.flatnonzero(rows)):
        op, _, model = batch.names[row].partition(" ")
        if op in LLM_OPERATIONS and model and " " not in model:
            ops[row] = op
            if not current_models[row].is_valid:
                models[row] = model
    if ops:
        cols["operation"] = scatter(get("operation"), list(ops), list(ops.values()))
        cols["request_model"] = scatter(current_models, list(models), list(models.values()))


def _provider_fallback(cols: dict[str, pa.Array], get: Any, emitter: EmitterMap, batch: SpanBatch,
                       rows: np.ndarray) -> None:
    """Provider from the scope name (openlit) or the span name (Langfuse) where no attribute gave it."""
    found: dict[int, str | None] = {}
    prefix = emitter.provider_from_scope
    for row in (int(r) for r in np.flatnonzero(rows)):
        scope = batch.scope_names[row]
        if prefix and scope and scope.startswith(prefix):
            found[row] = scope[len(prefix):] or None
        for name_prefix, provider in emitter.provider_from_name:
            if batch.names[row].startswith(name_prefix):
                found[row] = provider
    if found:
        cols["provider"] = scatter(get("provider"), list(found), list(found.values()))


def resource_identity(resource: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(service name, environment) of a resource. Emitters that leave ``service.name`` unset or
    ``unknown_service:*`` (phoenix.otel, Langfuse without OTEL_SERVICE_NAME) name the project in their
    own resource keys; openlit uses the deprecated ``deployment.environment``."""
    service = to_str(resource.get(sc.SERVICE_NAME))
    if service is None or service.startswith("unknown_service"):
        service = (to_str(resource.get(sc.OPENINFERENCE_PROJECT_NAME)) or to_str(resource.get(sc.LANGFUSE_ENVIRONMENT))
                   or service)
    env = (resource.get(sc.DEPLOYMENT_ENVIRONMENT_NAME) or resource.get(sc.DEPLOYMENT_ENVIRONMENT)
           or resource.get(sc.LANGFUSE_ENVIRONMENT))
    return service, to_str(env)
