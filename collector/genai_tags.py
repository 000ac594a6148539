"""Request parameters and tags of a flush of spans, as map columns, from the attribute entries.

Which entries are parameters or tags depends only on (emitter, key), so it is decided once per
distinct key and applied to every entry with numpy; only the JSON-object sources of OpenInference
and Langfuse are read span by span.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from spanlake.collector.attr_index import AttrIndex, map_distinct, scatter
from spanlake.collector.attributes import encode_value
from spanlake.collector.genai_map import EXTRA_TAG_KEYS, TAG_KEYS_IN_COLUMNS, EmitterMap, json_str, to_str
from spanlake.collector.storage.schema import STR_MAP
from spanlake.instrumentation import semconv as sc

_PARAM, _TAG, _EXTRA = 0, 1, 2
FEATURE_TAGS = frozenset({sc.FEATURE_TAG, sc.APP_FEATURE, sc.SPANLAKE_FEATURE})


def scan_action(emitter: EmitterMap, key: str) -> tuple[int, str, bool] | None:
    """What a key contributes for this emitter: (parameter / tag / extra tag, its name, value JSON-quoted)."""
    pprefix = emitter.params_prefix
    if pprefix and key.startswith(pprefix):
        return None if key in emitter.params_skip else (_PARAM, key[len(pprefix):], False)
    for prefix, is_json in emitter.tag_prefixes:
        if key.startswith(prefix):
            name = key if prefix == sc.APP_PREFIX else key[len(prefix):]
            return None if name == "finish_reason" else (_TAG, name, is_json)
    return (_EXTRA, EXTRA_TAG_KEYS[key], False) if key in EXTRA_TAG_KEYS else None


def _decoded(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text


class _Entries:
    """(row, name, value) triples collected for one map column, turned into a MapArray at the end."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.names: list[pa.Array] = []
        self.values: list[pa.Array] = []

    def add(self, rows: np.ndarray, names: pa.Array, values: pa.Array) -> None:
        if len(rows):
            self.rows.append(rows)
            self.names.append(names.cast(pa.string()))
            self.values.append(values.cast(pa.string()))

    def add_python(self, triples: list[tuple[int, str, str]]) -> None:
        if triples:
            rows, names, values = zip(*triples)
            self.add(np.array(rows, np.int64), pa.array(names, pa.string()), pa.array(values, pa.string()))

    def array(self, num_rows: int) -> pa.Array:
        """The map column; a name repeated in a row keeps its first position and its last value (dict semantics)."""
        if not self.rows:
            return pa.nulls(num_rows, STR_MAP)
        rows = np.concatenate(self.rows)
        names = pa.concat_arrays(self.names)
        values = pa.concat_arrays(self.values)
        name_codes = names.dictionary_encode().indices.to_numpy(zero_copy_only=False).astype(np.int64)
        key = rows * (int(name_codes.max()) + 1) + name_codes
        _, first = np.unique(key, return_index=True)
        if len(first) != len(key):  # duplicates: value of the last occurrence at the first one's place
            _, last_reversed = np.unique(key[::-1], return_index=True)
            last = len(key) - 1 - last_reversed
            order = np.argsort(first, kind="stable")
            keep, take_value = first[order], last[order]
        else:
            keep = take_value = np.arange(len(key))
        order = np.argsort(rows[keep], kind="stable")  # rows ascending, entry order kept within a row
        keep, take_value = keep[order], take_value[order]
        counts = np.bincount(rows[keep], minlength=num_rows)
        offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
        return pa.MapArray.from_arrays(offsets, names.take(pa.array(keep)), values.take(pa.array(take_value)),
                                       type=STR_MAP, mask=pa.array(counts == 0))


def params_and_tags(ix: AttrIndex, emitter_of_row: np.ndarray,
                    emitters: Sequence[EmitterMap]) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(request_params, tags, feature found among the tags) per row; PLAIN rows get tags only."""
    params, tags = _Entries(), _Entries()
    feature_rows: list[np.ndarray] = []
    feature_values: list[pa.Array] = []
    entry_emitter = emitter_of_row[ix.parents]
    for index in np.unique(emitter_of_row):
        emitter = emitters[index]
        selected = np.flatnonzero(entry_emitter == index)
        actions = [scan_action(emitter, name) for name in ix.names]
        kind = np.array([a[0] if a else -1 for a in actions], np.int8)[ix.codes[selected]]
        if not (kind >= 0).any():
            _json_sources(ix, emitter, emitter_of_row == index, params, tags, feature_rows, feature_values)
            continue
        names = pa.array([a[1] if a else None for a in actions], pa.string())
        is_json = np.array([bool(a and a[2]) for a in actions])
        _prefixed_params(ix, emitter, selected[kind == _PARAM], names, params)
        _prefixed_tags(ix, selected[kind >= _TAG], names, is_json, tags, feature_rows, feature_values)
        _json_sources(ix, emitter, emitter_of_row == index, params, tags, feature_rows, feature_values)
    feature = pa.nulls(ix.rows, pa.string())
    if feature_rows:
        rows = np.concatenate(feature_rows)
        values = pa.concat_arrays(feature_values)
        _, first = np.unique(rows, return_index=True)  # the first feature-named tag of a row
        index = np.full(ix.rows, -1, np.int64)
        index[rows[first]] = first
        feature = values.take(pa.array(index, mask=index < 0))
    return params.array(ix.rows), tags.array(ix.rows), feature


def _prefixed_params(ix: AttrIndex, emitter: EmitterMap, entries: np.ndarray, names: pa.Array,
                     params: _Entries) -> None:
    """Parameter entries that were sent: not empty, not a default the emitter records regardless."""
    values = ix.items.take(pa.array(entries))
    keep = np.asarray(values.to_numpy(zero_copy_only=False) != "", bool)
    defaults = emitter.param_defaults
    if defaults:
        codes = ix.codes[entries]
        for key, default in defaults.items():
            code = ix.code(key)
            at = np.flatnonzero(codes == code) if code is not None else ()
            if len(at):
                same = map_distinct(values.take(pa.array(at)), lambda v, d=default: _decoded(v) == d, pa.bool_())
                keep[at[np.asarray(same.to_numpy(zero_copy_only=False), bool)]] = False
    entries = entries[keep]
    params.add(ix.parents[entries], names.take(pa.array(ix.codes[entries])), ix.items.take(pa.array(entries)))


def _prefixed_tags(ix: AttrIndex, entries: np.ndarray, names: pa.Array, is_json: np.ndarray, tags: _Entries,
                   feature_rows: list[np.ndarray], feature_values: list[pa.Array]) -> None:
    """Tag entries (prefixed keys, extra keys); those with a typed column are left out, a feature kept aside."""
    codes = ix.codes[entries]
    values = ix.items.take(pa.array(entries))
    if is_json[codes].any():  # Langfuse metadata values are JSON-quoted strings
        quoted = np.flatnonzero(is_json[codes])
        unquoted = map_distinct(values.take(pa.array(quoted)), lambda v: json_str(v) or "", pa.string())
        values = scatter(values, quoted.tolist(), unquoted.to_pylist())
    tag_names = names.take(pa.array(codes)).to_pylist()
    in_column = np.array([n in TAG_KEYS_IN_COLUMNS for n in tag_names], bool)
    is_feature = np.array([n in FEATURE_TAGS for n in tag_names], bool)
    rows = ix.parents[entries]
    tags.add(rows[~in_column], names.take(pa.array(codes[~in_column])), values.filter(pa.array(~in_column)))
    if is_feature.any():
        feature_rows.append(rows[is_feature])
        feature_values.append(values.filter(pa.array(is_feature)))


def _json_sources(ix: AttrIndex, emitter: EmitterMap, rows_of_emitter: np.ndarray, params: _Entries,
                  tags: _Entries, feature_rows: list[np.ndarray], feature_values: list[pa.Array]) -> None:
    """Parameters and tags inside JSON objects or lists (OpenInference, Langfuse): read span by span."""
    param_triples: list[tuple[int, str, str]] = []
    tag_triples: list[tuple[int, str, str]] = []
    features: list[tuple[int, str]] = []
    skip, defaults = emitter.params_skip, emitter.param_defaults
    for key in emitter.params_json:
        for row, obj in _objects(ix, key, rows_of_emitter):
            param_triples.extend((row, name, encode_value(value)) for name, value in obj.items()
                                 if name not in skip and not (name in defaults and defaults[name] == value))
    for key in emitter.tag_json_objects:
        for row, obj in _objects(ix, key, rows_of_emitter):
            for name, value in obj.items():
                text = to_str(value) or ""
                if name not in TAG_KEYS_IN_COLUMNS:
                    tag_triples.append((row, name, text))
                elif name in FEATURE_TAGS:
                    features.append((row, text))
    for key in emitter.tag_lists:
        texts = ix.values(key)
        tag_triples.extend((int(row), "tags", texts[int(row)].as_py())
                           for row in np.flatnonzero(ix.has(key) & rows_of_emitter))
    params.add_python(param_triples)
    tags.add_python(tag_triples)
    if features:
        rows, values = zip(*features)
        feature_rows.append(np.array(rows, np.int64))
        feature_values.append(pa.array(values, pa.string()))


def _objects(ix: AttrIndex, key: str, rows_of_emitter: np.ndarray) -> list[tuple[int, dict[str, Any]]]:
    """(row, JSON object) of every row of the emitter whose ``key`` holds one."""
    texts = ix.values(key)
    found = []
    for row in np.flatnonzero(ix.has(key) & rows_of_emitter):
        obj = _decoded(texts[int(row)].as_py())
        if isinstance(obj, dict):
            found.append((int(row), obj))
    return found
