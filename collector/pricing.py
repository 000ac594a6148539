"""Cost of an LLM call from genai-prices (never a hand-kept table), cheap enough for the ingest path.

genai-prices' full calculation costs ~100 µs per call, so prices are resolved once per
(provider, model, UTC day) into linear per-token rates (derived from genai-prices itself with unit
usages) and each span then costs a few multiplications. Models with tiered prices fall back to
the full calculation. An unknown model gets None (and is counted), never zero.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
from genai_prices import Usage
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import TieredPrices

PRICE_SOURCE = "genai-prices"
PRICE_VERSION = f"genai-prices=={version('genai-prices')}"
_M = 1_000_000
# OTel GenAI provider names (gen_ai.provider.name) → genai-prices provider ids, where they differ.
_PROVIDER_IDS = {"aws.bedrock": "aws", "azure.ai.openai": "azure", "azure.ai.inference": "azure",
                 "gcp.gemini": "google", "gcp.vertex_ai": "google", "gcp.gen_ai": "google",
                 "mistral_ai": "mistral", "x_ai": "x-ai", "ibm.watsonx.ai": None}


@dataclass(frozen=True)
class Rates:
    """USD per token of each kind (input excludes cached/cache-write tokens) plus a per-request price."""

    base: float
    input: float
    output: float
    cache_read: float
    cache_write: float
    model_price: Any  # kept for tiered models, which need the full calculation
    tiered: bool


class Tokens(NamedTuple):
    """The token counts of one call, inclusive semantics (input includes cache read and write)."""

    input: int
    output: int
    cache_read: int = 0
    cache_write: int = 0


def _usage(t: Tokens) -> Usage:
    return Usage(input_tokens=t.input, output_tokens=t.output, cache_read_tokens=t.cache_read,
                 cache_write_tokens=t.cache_write)


def _rates(model_price: Any) -> Rates:
    """Linear rates derived from genai-prices by pricing unit usages (exact for non-tiered prices)."""
    def total(t: Tokens) -> float:
        return float(model_price.calc_price(_usage(t))["total_price"])

    base = total(Tokens(0, 0))
    return Rates(base=base, input=(total(Tokens(_M, 0)) - base) / _M, output=(total(Tokens(0, _M)) - base) / _M,
                 cache_read=(total(Tokens(_M, 0, cache_read=_M)) - base) / _M,
                 cache_write=(total(Tokens(_M, 0, cache_write=_M)) - base) / _M, model_price=model_price,
                 tiered=any(isinstance(v, TieredPrices) for v in vars(model_price).values()))


class PriceBook:
    """Looks prices up per (provider, model, day) once; counts calls it could not price."""

    def __init__(self) -> None:
        self._snapshot = get_snapshot()
        self._cache: dict[tuple[str | None, str, int], Rates | None] = {}
        self.unpriced = 0

    def rates(self, provider: str | None, model: str, when_ns: int) -> Rates | None:
        key = (provider, model, when_ns // 86_400_000_000_000)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = self._lookup(provider, model, dt.datetime.fromtimestamp(key[2] * 86_400, dt.timezone.utc))
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = found
        return found

    def _lookup(self, provider: str | None, model: str, day: dt.datetime) -> Rates | None:
        provider_id = _PROVIDER_IDS.get(provider, provider) if provider else None
        for candidate in dict.fromkeys((provider_id, None)):  # the named provider first, then any
            try:
                _, model_info = self._snapshot.find_provider_model(model, None, candidate, None)
                price = model_info.get_prices(day)
            except LookupError:
                continue
            try:
                return _rates(price)
            except (ValueError, ArithmeticError):  # prices genai-prices itself cannot apply to tokens
                return None
        return None

    def cost_array(self, providers: pa.Array, models: pa.Array, input_tokens: pa.Array, output_tokens: pa.Array,
                   cache_read: pa.Array, cache_write: pa.Array, starts_ns: np.ndarray) -> pa.Array:
        """USD cost of many calls: rates looked up once per distinct (provider, model, day), then numpy
        arithmetic (tiered prices through genai-prices itself). Token arrays have no nulls; unknown models
        get NULL and are counted in ``unpriced``."""
        days = starts_ns // 86_400_000_000_000
        provider_codes, provider_names = _codes(providers)
        model_codes, model_names = _codes(models)
        span = int(days.max() - days.min()) + 1
        group_key = ((provider_codes + 1) * (len(model_names) + 1) + model_codes + 1) * span + (days - days.min())
        _, first, group_of = np.unique(group_key, return_index=True, return_inverse=True)
        rates = [self.rates(provider_names[provider_codes[i]] if provider_codes[i] >= 0 else None,
                            model_names[model_codes[i]], int(starts_ns[i])) if model_codes[i] >= 0 else None
                 for i in first]
        table = np.array([(r.base, r.input, r.output, r.cache_read, r.cache_write) if r is not None else (0.0,) * 5
                          for r in rates], np.float64)[group_of]
        tokens = [np.asarray(a.to_numpy(zero_copy_only=False), np.float64)
                  for a in (input_tokens, output_tokens, cache_read, cache_write)]
        uncached = np.maximum(0.0, tokens[0] - tokens[2] - tokens[3])
        cost = table[:, 0] + uncached * table[:, 1] + tokens[1] * table[:, 2] + tokens[2] * table[:, 3] \
            + tokens[3] * table[:, 4]
        unknown = np.array([r is None for r in rates], bool)[group_of]
        self.unpriced += int(unknown.sum())
        for row in np.flatnonzero(np.array([r is not None and r.tiered for r in rates], bool)[group_of]):
            r = rates[group_of[row]]
            usage = _usage(Tokens(*(int(t[row]) for t in tokens)))
            cost[row] = float(r.model_price.calc_price(usage)["total_price"])  # type: ignore[union-attr]
        return pa.array(cost, pa.float64(), mask=unknown)


def _codes(values: pa.Array) -> tuple[np.ndarray, list[str]]:
    """(code per row, -1 for null; the distinct values) of a string array."""
    encoded = values.dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary.to_pylist()
