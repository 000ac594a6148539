"""Vectorised reads of one flush's attribute map column: row-aligned values of a key, typed.

The writer builds the ``attributes`` MapArray of a whole flush anyway. Reading the GenAI columns
from it with a few Arrow/numpy passes per key costs a fraction of per-span dict work, which cost
more than the rest of the write path (issue 3, speed budget). Values are the stored strings
(strings as sent, other values JSON-encoded), so converters see JSON text for non-strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from spanlake.collector.genai_map import (
    error_class,
    json_str,
    json_str_list,
    to_bool,
    to_float,
    to_int,
    to_str,
    to_str_list,
)

STR_LIST = pa.list_(pa.string())
# Arrow type of each converter's result (others are inferred from their values).
CONVERTER_TYPES: dict[Callable[[Any], Any], pa.DataType] = {
    to_str: pa.string(), to_int: pa.int64(), to_float: pa.float64(), to_bool: pa.bool_(),
    to_str_list: STR_LIST, error_class: pa.string(), json_str: pa.string(), json_str_list: STR_LIST,
}


class AttrIndex:
    """Row-aligned access to the entries of a MapArray (string → string) by key or key predicate."""

    def __init__(self, attrs: pa.MapArray, overrides: Mapping[str, Mapping[int, str]] | None = None) -> None:
        self.rows = len(attrs)
        self.items: pa.Array = attrs.items
        encoded = pc.dictionary_encode(attrs.keys)
        self.names: list[str] = encoded.dictionary.to_pylist()  # each distinct key once
        self.codes = encoded.indices.to_numpy(zero_copy_only=False)  # entry → key code
        # entry → row (pc.list_parent_indices aborts on a MapArray in pyarrow 26; offsets say the same)
        offsets = attrs.offsets.to_numpy(zero_copy_only=False)
        self.parents = np.repeat(np.arange(self.rows, dtype=np.int64), np.diff(offsets))
        self._code = {name: i for i, name in enumerate(self.names)}
        self._overrides = overrides or {}
        self._values: dict[str, pa.Array] = {}

    def code(self, key: str) -> int | None:
        """The code of a key in this batch (None when no row has it)."""
        return self._code.get(key)

    def entries_of(self, key: str) -> np.ndarray:
        """Entry positions holding ``key`` (at most one per row: OTLP keys are unique in a span)."""
        code = self._code.get(key)
        return np.flatnonzero(self.codes == code) if code is not None else np.empty(0, np.int64)

    def values(self, key: str) -> pa.Array:
        """The stored string of ``key`` per row (null where a row lacks it)."""
        found = self._values.get(key)
        if found is None:
            entries = self.entries_of(key)
            index = np.full(self.rows, -1, np.int64)
            index[self.parents[entries]] = entries
            found = self.items.take(pa.array(index, mask=index < 0))
            patch = self._overrides.get(key)
            if patch:  # values taken out of the map before it was built (content keys)
                found = scatter(found, list(patch), list(patch.values()))
            self._values[key] = found
        return found

    def has(self, key: str) -> np.ndarray:
        """Per row: does it carry ``key``."""
        out = np.zeros(self.rows, bool)
        out[self.parents[self.entries_of(key)]] = True
        if self._overrides.get(key):
            out[list(self._overrides[key])] = True
        return out

    def rows_with_keys(self, predicate: Callable[[str], bool]) -> np.ndarray:
        """Per row: does it carry any key for which ``predicate`` holds."""
        wanted = np.fromiter((predicate(n) for n in self.names), bool, len(self.names))
        out = np.zeros(self.rows, bool)
        if wanted.any():
            out[self.parents[wanted[self.codes]]] = True
        return out

    def typed(self, key: str, convert: Callable[[Any], Any]) -> pa.Array:
        """Row-aligned values of ``key`` converted as ``convert`` would, vectorised where it can be."""
        return convert_strings(self.values(key), convert)


def scatter(array: pa.Array, rows: Iterable[int], values: list[Any]) -> pa.Array:
    """``array`` with the given rows replaced by ``values`` (few rows: the rare per-span paths)."""
    rows = list(rows)
    if not rows:
        return array
    mask = np.zeros(len(array), bool)
    mask[rows] = True
    order = np.argsort(rows, kind="stable")  # replace_with_mask fills masked slots in row order
    replacement = pa.array([values[i] for i in order], array.type)
    return pc.replace_with_mask(array, pa.array(mask), replacement)


def map_distinct(array: pa.Array, fn: Callable[[Any], Any], out_type: pa.DataType | None) -> pa.Array:
    """``fn`` applied once per distinct value (values repeat: finish reasons, error classes, operations)."""
    distinct = pc.unique(array)
    mapped = [fn(v) if v is not None else None for v in distinct.to_pylist()]
    results = pa.array(mapped, out_type) if out_type is not None else pa.array(mapped)
    return results.take(pc.index_in(array, value_set=distinct))


def _int_or_none(text: str) -> int | None:
    value = to_int(text)
    if value is None and text not in ("true", "false"):
        number = to_float(text)  # a float that is a whole number (JSON text "12.0")
        value = to_int(number) if number is not None and number.is_integer() else None
    return value


def convert_strings(values: pa.Array, convert: Callable[[Any], Any]) -> pa.Array:
    """Stored strings → the converter's typed values (null where it gives None)."""
    if values.null_count == len(values):
        return pa.nulls(len(values), CONVERTER_TYPES.get(convert, pa.string()))
    if convert is to_str:
        return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    if convert is to_bool:
        lower = pc.utf8_lower(values)
        return pc.if_else(pc.equal(lower, "true"), True,
                          pc.if_else(pc.equal(lower, "false"), False, pa.scalar(None, pa.bool_())))
    if convert in (to_int, to_float):
        target = pa.int64() if convert is to_int else pa.float64()
        try:
            return pc.cast(values, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # some text is not a plain number
            return map_distinct(values, _int_or_none if convert is to_int else to_float, target)
    return map_distinct(values, convert, CONVERTER_TYPES.get(convert))
