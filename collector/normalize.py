"""The GenAI normaliser: one span's attributes → the typed GenAI columns, whatever the emitter.

It picks the emitter's declarative map (``collector/genai_map.py``) by scope name (memoised) or, for
unknown scopes, by key presence, and applies only that map; then it fixes the known semantic
differences (inclusive input tokens, TTFT only on streams), takes content out of the attributes into
``span_content`` and prices the call. JSON is parsed only when a column needs a value inside it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from spanlake.collector import content as ct
from spanlake.collector.attributes import encode_value
from spanlake.collector.genai_map import (
    EXTRA_TAG_KEYS,
    PLAIN,
    TAG_KEYS_IN_COLUMNS,
    EmitterMap,
    emitter_for_scope,
    emitter_for_span,
    error_class,
    json_str,
    to_float,
    to_int,
    to_str,
)
from spanlake.collector.pricing import PRICE_SOURCE, PRICE_VERSION, PriceBook
from spanlake.instrumentation import semconv as sc

GENAI_COLUMNS: tuple[str, ...] = (
    "operation", "provider", "request_model", "response_model", "response_id", "input_tokens",
    "output_tokens", "total_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens",
    "ttft_s", "is_stream", "finish_reasons", "user_id", "session_id", "feature", "prompt_name",
    "prompt_version", "error_type", "cost_usd", "output_chars", "emitter", "request_params", "tags",
    "prompt_template", "http_status", "ttft_source", "cost_source", "price_version",
)
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
# gen_ai.operation.name values of the semconv (1.37-1.41); other emitters' kinds are mapped onto these.
SEMCONV_OPERATIONS = LLM_OPERATIONS | {"execute_tool", "invoke_agent", "create_agent", "invoke_workflow",
                                       "retrieval"}
_STREAMABLE = frozenset({"chat", "text_completion", "generate_content"})
_STATUS_ERROR = 2
_HTTP_CODE_IN_MESSAGE = re.compile(r"Error code: (\d{3})\b")  # openai/anthropic SDK APIStatusError text
_ERROR_CLASS_IN_MESSAGE = re.compile(r"^(\w+(?:Error|Exception)): ")
_FEATURE_TAGS = frozenset({sc.FEATURE_TAG, sc.APP_FEATURE, sc.SPANLAKE_FEATURE})
_TTFT_SOURCES = {"attr": "attribute", "event": "span_event", "iso": "iso_timestamp"}


def _json_value(attrs: Mapping[str, Any], key: str, path: tuple[str, ...], cache: dict[str, Any]) -> Any:
    """The value at ``path`` inside the JSON text of attribute ``key`` (parsed at most once per span)."""
    if key not in cache:
        raw = attrs[key]
        try:
            cache[key] = json.loads(raw) if isinstance(raw, str) else raw
        except (json.JSONDecodeError, RecursionError):
            cache[key] = None
    value = cache[key]
    for step in path:
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


_Plan = tuple[tuple[str, tuple[tuple[str, Any, tuple[str, ...]], ...]], ...]
_PLANS: dict[str, tuple[_Plan, tuple[str, ...]]] = {}


def _plan(emitter: EmitterMap) -> tuple[_Plan, tuple[str, ...]]:
    """The map as plain tuples (hot loop without attribute lookups) and every key prefix it scans for."""
    found = _PLANS.get(emitter.name)
    if found is None:
        plan = tuple((column, tuple((s.key, s.convert, s.path) for s in sources))
                     for column, sources in emitter.columns.items())
        prefixes = tuple(p for p, _ in emitter.tag_prefixes) + ((emitter.params_prefix,) if emitter.params_prefix else ())
        found = _PLANS[emitter.name] = (plan, prefixes)
    return found


_KEYSETS_MAX = 4096


_PARAM, _TAG, _EXTRA = 0, 1, 2
_Scan = tuple[tuple[str, int, str, bool], ...]  # (key, kind, param/tag name, value JSON-encoded)


def _scan_action(emitter: EmitterMap, key: str) -> tuple[str, int, str, bool] | None:
    """What a prefixed or extra key contributes: a request parameter, a tag, or nothing."""
    pprefix = emitter.params_prefix
    if pprefix and key.startswith(pprefix):
        return None if key in emitter.params_skip else (key, _PARAM, key[len(pprefix):], False)
    for prefix, is_json in emitter.tag_prefixes:
        if key.startswith(prefix):
            name = key if prefix == sc.APP_PREFIX else key[len(prefix):]
            return None if name == "finish_reason" else (key, _TAG, name, is_json)
    return (key, _EXTRA, EXTRA_TAG_KEYS[key], False) if key in EXTRA_TAG_KEYS else None


def _keyset_plan(emitter: EmitterMap, attrs: Mapping[str, Any]) -> tuple[_Plan, _Scan]:
    """(the sources present, what each prefixed key contributes) for this emitter and key set."""
    plan, prefixes = _plan(emitter)
    present = tuple((column, kept) for column, sources in plan
                    if (kept := tuple(src for src in sources if src[0] in attrs)))
    scan = tuple(a for k in attrs if (k.startswith(prefixes) or k in EXTRA_TAG_KEYS)
                 and (a := _scan_action(emitter, k)) is not None)
    return present, scan


def extract_columns(emitter: EmitterMap, attrs: Mapping[str, Any], cache: dict[str, Any],
                    present: _Plan | None = None) -> dict[str, Any]:
    """Apply one map: per column, the first source present whose value converts."""
    row: dict[str, Any] = {}
    for column, sources in present if present is not None else _plan(emitter)[0]:
        for key, convert, path in sources:
            raw = attrs.get(key)
            if raw is None:
                continue
            if path:
                raw = _json_value(attrs, key, path, cache)
            kind = type(raw)  # the common cases without a call: str, int tokens, float seconds
            if convert is to_str and kind is str:
                value = raw or None
            elif (convert is to_int and kind is int) or (convert is to_float and kind is float):
                value = raw
            else:
                value = convert(raw) if raw is not None else None
            if value is not None:
                row[column] = value
                break
    return row


def _encode(value: Any) -> str:
    """encode_value with fast paths for the scalar types request parameters have."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is float and math.isfinite(value):
        return repr(value)
    return encode_value(value)


def _scan_prefixed(emitter: EmitterMap, attrs: Mapping[str, Any], cache: dict[str, Any],
                   scan: _Scan | None = None) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    """(request params, tags) from the emitter's prefixed keys and JSON objects, in one pass over keys.
    A tag named like the feature (``feature``, ``app.feature``) is returned under ``_FEATURE``."""
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    defaults, skip = emitter.param_defaults, emitter.params_skip
    for key, kind, name, is_json in scan if scan is not None else _keyset_plan(emitter, attrs)[1]:
        value = attrs[key]
        if kind == _PARAM:
            if value != "" and not (key in defaults and defaults[key] == value):
                params[name] = _encode(value)
        elif kind == _TAG:
            _put_tag(tags, name, (json_str(value) if is_json else to_str(value)) or "")
        else:
            tags[name] = encode_value(value)
    for key in emitter.params_json:
        if key in attrs:
            obj = _json_value(attrs, key, (), cache)
            for name, value in (obj.items() if isinstance(obj, dict) else ()):
                if name not in skip and not (name in defaults and defaults[name] == value):
                    params[name] = encode_value(value)
    for key in emitter.tag_json_objects:
        if key in attrs:
            obj = _json_value(attrs, key, (), cache)
            for name, value in (obj.items() if isinstance(obj, dict) else ()):
                _put_tag(tags, name, to_str(value) or "")
    for key in emitter.tag_lists:
        if key in attrs:
            tags["tags"] = encode_value(attrs[key])
    return params or None, tags or None


_FEATURE = "\0feature"  # never a real tag name


def _put_tag(tags: dict[str, str], name: str, value: str) -> None:
    """Store a tag, except those that have a typed column (a feature tag is kept aside for it)."""
    if name in TAG_KEYS_IN_COLUMNS:
        if name in _FEATURE_TAGS:
            tags.setdefault(_FEATURE, value)
    else:
        tags[name] = value


def _ttft(emitter: EmitterMap, attrs: Mapping[str, Any], span: Any, start_ns: int) -> tuple[float | None, str | None]:
    """Time to first token in seconds and its source, from the emitter's TTFT shapes (first that is present)."""
    for kind, key in emitter.ttft:
        value: float | None = None
        if kind == "attr":
            value = to_float(attrs.get(key))
        elif kind == "event":
            first = next((e.time_unix_nano for e in span.events if e.name == key), 0)
            value = (first - start_ns) / 1e9 if first else None
        elif kind == "iso" and key in attrs:
            value = _iso_minus(json_str(attrs[key]), start_ns)
        if value is not None:
            return value, _TTFT_SOURCES[kind]
    return None, None


def _iso_minus(text: str | None, start_ns: int) -> float | None:
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return round((when - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) / dt.timedelta(microseconds=1)
                 - start_ns / 1000) / 1e6


def _version_at_most(version: str | None, limit: tuple[int, int]) -> bool:
    parts = re.findall(r"\d+", version or "")[:2]
    return len(parts) == 2 and (int(parts[0]), int(parts[1])) <= limit


def _fix_tokens(row: dict[str, Any], emitter: EmitterMap, scope_name: str | None, scope_version: str | None) -> None:
    """Inclusive token semantics (semconv): input includes cache read/write, total = input + output."""
    inp, out = row.get("input_tokens"), row.get("output_tokens")
    recompute_total = False
    if inp is not None and row.get("provider") in emitter.input_excludes_cache_for:
        # openlit reports Anthropic's raw input_tokens, which exclude cached tokens (fixture: 10 vs 13).
        inp = row["input_tokens"] = inp + (row.get("cached_input_tokens") or 0) + (row.get("cache_write_tokens") or 0)
        recompute_total = True
    if (out and emitter.name == "openllmetry" and row.get("is_stream") and scope_name
            and scope_name.endswith(sc.GEN_AI_PROVIDER_ANTHROPIC) and _version_at_most(scope_version, (0, 62))):
        # OpenLLMetry <= 0.62 adds message_start's output_tokens (1) to message_delta's cumulative count.
        out = row["output_tokens"] = out - 1
        recompute_total = True
    if (recompute_total or row.get("total_tokens") is None) and (inp is not None or out is not None):
        row["total_tokens"] = (inp or 0) + (out or 0)


def _from_span_name(row: dict[str, Any], name: str) -> str | None:
    """Operation and request model from a semconv span name ``{operation} {model}``."""
    op, _, model = name.partition(" ")
    if op not in LLM_OPERATIONS or not model or " " in model:
        return None
    row["operation"] = op
    row.setdefault("request_model", model)
    return op


def _fill_provider(row: dict[str, Any], emitter: EmitterMap, scope_name: str | None, span_name: str) -> None:
    if "provider" in row:
        return
    if emitter.provider_from_scope and scope_name and scope_name.startswith(emitter.provider_from_scope):
        row["provider"] = scope_name[len(emitter.provider_from_scope):] or None
    for prefix, provider in emitter.provider_from_name:
        if span_name.startswith(prefix):
            row["provider"] = provider


def _fill_errors(row: dict[str, Any], attrs: Mapping[str, Any], span: Any) -> None:
    """Error class (exception event, status message) and HTTP status (attributes, SDK error text)."""
    status = attrs.get(sc.HTTP_RESPONSE_STATUS_CODE, attrs.get(sc.HTTP_STATUS_CODE_OLD))
    if status is not None:
        row["http_status"] = to_int(status)
    if span.status.code != _STATUS_ERROR:
        return
    message = span.status.message or to_str(attrs.get(sc.LANGFUSE_STATUS_MESSAGE)) or ""
    if "error_type" not in row:
        for event in span.events:
            if event.name == sc.EXCEPTION_EVENT:
                found = next((kv.value.string_value for kv in event.attributes if kv.key == sc.EXCEPTION_TYPE), "")
                if found:
                    row["error_type"] = error_class(found)
                    break
    if "error_type" not in row:
        match = _ERROR_CLASS_IN_MESSAGE.match(message)
        if match:
            row["error_type"] = match.group(1)
    if row.get("http_status") is None:
        match = _HTTP_CODE_IN_MESSAGE.search(message)
        if match is None:
            for event in span.events:
                for kv in event.attributes if event.name == sc.EXCEPTION_EVENT else ():
                    match = match or _HTTP_CODE_IN_MESSAGE.search(kv.value.string_value)
        if match:
            row["http_status"] = int(match.group(1))


class GenAINormalizer:
    """Per writer process: the emitter cache, the price book and the pending content rows."""

    def __init__(self, prices: PriceBook | None = None, content: ct.ContentCollector | None = None) -> None:
        self.prices = prices if prices is not None else PriceBook()
        self.content = content if content is not None else ct.ContentCollector()
        self._scopes: dict[str | None, EmitterMap | None] = {}
        self._keysets: dict[tuple[str | None, tuple[str, ...]], tuple[EmitterMap, _Plan, _Scan]] = {}

    def counters(self) -> dict[str, int]:
        return {"genai_unpriced": self.prices.unpriced}

    def _emitter(self, scope_name: str | None, attrs: Mapping[str, Any]) -> EmitterMap:
        try:
            emitter = self._scopes[scope_name]
        except KeyError:
            emitter = self._scopes[scope_name] = emitter_for_scope(scope_name)
        return emitter if emitter is not None else emitter_for_span(attrs)

    def _route(self, scope_name: str | None, attrs: Mapping[str, Any]) -> tuple[EmitterMap, _Plan, _Scan]:
        """Emitter, present sources and keys to scan, memoised per (scope, key set): spans of one
        instrumentation share their key set, so per span this is one tuple hash instead of ~60 lookups."""
        keyset = (scope_name, tuple(attrs))
        found = self._keysets.get(keyset)
        if found is None:
            emitter = self._emitter(scope_name, attrs)
            found = (emitter, *_keyset_plan(emitter, attrs))
            if len(self._keysets) >= _KEYSETS_MAX:  # key sets of high cardinality (indexed keys): start over
                self._keysets.clear()
            self._keysets[keyset] = found
        return found

    def span(self, attrs: dict[str, Any], span: Any, start_ns: int, scope_name: str | None,
             scope_version: str | None, service: str | None) -> dict[str, Any] | None:
        """Typed columns of one span (None for a plain span without tags); strips content from ``attrs``."""
        emitter, present, scan = self._route(scope_name, attrs)
        if emitter is PLAIN:
            return self._plain(attrs, present, scan)
        cache: dict[str, Any] = {}
        row = extract_columns(emitter, attrs, cache, present)
        row["emitter"] = emitter.name
        op = row.get("operation")
        if op is not None and emitter.operation_values:
            row["operation"] = op = emitter.operation_values.get(op, op if op in SEMCONV_OPERATIONS else None)
        if op is None and emitter.operation_from_name:
            op = _from_span_name(row, span.name)
        _fill_provider(row, emitter, scope_name, span.name)
        if emitter.model_is_request_on_error and span.status.code == _STATUS_ERROR and "response_model" in row:
            row["request_model"] = row.pop("response_model")
        params, tags = _scan_prefixed(emitter, attrs, cache, scan)
        feature = tags.pop(_FEATURE, None) if tags else None
        if "feature" not in row and feature:
            row["feature"] = feature
        # Map columns as (key, value) lists: Arrow converts those ~25x faster than dicts.
        row["request_params"] = list(params.items()) if params else None
        row["tags"] = list(tags.items()) if tags else None
        self._stream_and_ttft(row, emitter, attrs, span, start_ns, op)
        _fix_tokens(row, emitter, scope_name, scope_version)
        _fill_errors(row, attrs, span)
        self._content(row, emitter, attrs, span, start_ns, service)
        if op in LLM_OPERATIONS:
            self._price(row, start_ns)
        return row

    def _plain(self, attrs: dict[str, Any], present: _Plan, scan: _Scan) -> dict[str, Any] | None:
        row = extract_columns(PLAIN, attrs, {}, present)
        _, tags = _scan_prefixed(PLAIN, attrs, {}, scan) if scan else (None, None)
        if tags:
            tags.pop(_FEATURE, None)
            if tags:
                row["tags"] = list(tags.items())
        status = attrs.get(sc.HTTP_RESPONSE_STATUS_CODE, attrs.get(sc.HTTP_STATUS_CODE_OLD))
        if status is not None:
            row["http_status"] = to_int(status)
        return row or None

    @staticmethod
    def _stream_and_ttft(row: dict[str, Any], emitter: EmitterMap, attrs: Mapping[str, Any], span: Any,
                         start_ns: int, op: str | None) -> None:
        ttft, source = _ttft(emitter, attrs, span, start_ns)
        stream = row.get("is_stream")
        if stream is None and ttft is not None and emitter.ttft_implies_stream:
            stream = True  # a first-chunk attribute/event/timestamp only exists on streamed calls
        if stream is None and emitter.stream_absent_means_false and op in _STREAMABLE:
            stream = False
        row["is_stream"] = stream
        if stream is not True or ttft is None or ttft < 0:
            ttft = source = None  # never a TTFT on a call that was not streamed (openlit stamps every span)
        row["ttft_s"], row["ttft_source"] = ttft, source

    def _content(self, row: dict[str, Any], emitter: EmitterMap, attrs: dict[str, Any], span: Any,
                 start_ns: int, service: str | None) -> None:
        found = ct.from_span(emitter.content, attrs)
        if found is not None:
            self.content.add_span((span.trace_id.hex(), span.span_id.hex()), start_ns // 1000, service, found)
        if row.get("operation") not in _STREAMABLE:  # output length of an LLM call (embeddings: a vector)
            return
        if found is not None:
            row["output_chars"] = ct.output_chars(found.output)
        elif self.content.has_log_content:  # the span's content may have come first, as log records
            row["output_chars"] = self.content.output_chars_seen((span.trace_id.hex(), span.span_id.hex()))

    def _price(self, row: dict[str, Any], start_ns: int) -> None:
        if row.get("cost_usd") is not None:
            row["cost_source"], row["price_version"] = "emitter", row["emitter"]
            return
        inp, out = row.get("input_tokens"), row.get("output_tokens")
        if inp is None and out is None:
            return  # nothing was used (e.g. a failed call): no cost to compute, not an unknown price
        model = row.get("response_model") or row.get("request_model")
        cost = self.prices.cost_of(row.get("provider"), model, inp or 0, out or 0, row.get("cached_input_tokens") or 0,
                                   row.get("cache_write_tokens") or 0, start_ns)
        if cost is not None:
            row["cost_usd"], row["cost_source"], row["price_version"] = cost, PRICE_SOURCE, PRICE_VERSION

    def log(self, event_name: str | None, attrs: Mapping[str, Any], body: Any, trace_id: bytes, span_id: bytes,
            time_ns: int, service: str | None) -> None:
        """Content from a GenAI log record, joined to its span by ids (records without ids cannot be)."""
        if event_name not in ct.CONTENT_EVENTS or not any(trace_id) or not any(span_id):
            return
        found = ct.from_log(event_name, attrs, body)
        if found is not None:
            self.content.add_log((trace_id.hex(), span_id.hex()), time_ns // 1000, service, found)


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
