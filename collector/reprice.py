"""Recompute stored LLM costs with the current genai-prices data (``spanlake reprice``).

Rows whose cost the emitter reported keep it; rows priced by genai-prices, or left unpriced, are
priced again from their provider, model, token kinds and start time. The affected day partitions
of ``spans`` are rewritten in one atomic Delta commit (overwrite with a predicate), so readers see
either the old or the new costs; a commit that races the collector's appends is retried.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError
from spanlake.collector.normalize import DEFAULT_MAX_CALL_COST_USD, LLM_OPERATIONS, cost_suspect
from spanlake.collector.pricing import PRICE_SOURCE, PRICE_VERSION, PriceBook
from spanlake.collector.storage import schema
from spanlake.collector.storage.lake_writer import table_path

_RETRIES = 5


@dataclass(frozen=True)
class RepriceResult:
    rows_read: int
    repriced: int
    unpriced: int


def _new_costs(table: pa.Table, prices: PriceBook) -> tuple[list[float | None], list[str | None],
                                                            list[str | None], int]:
    """cost_usd / cost_source / price_version per row, and how many rows were (re)priced."""
    llm = pc.is_in(table["operation"], pa.array(sorted(LLM_OPERATIONS)))
    not_reported = pc.fill_null(pc.not_equal(table["cost_source"], "emitter"), True)
    has_tokens = pc.or_(pc.is_valid(table["input_tokens"]), pc.is_valid(table["output_tokens"]))
    priceable = pc.fill_null(pc.and_(pc.and_(llm, not_reported), has_tokens), False)
    rows = np.flatnonzero(np.asarray(priceable.to_numpy(zero_copy_only=False), bool))
    costs, sources, versions = (table[c].to_pylist() for c in ("cost_usd", "cost_source", "price_version"))
    if len(rows):
        sub = table.take(pa.array(rows)).combine_chunks()
        computed = prices.cost_array(
            sub["provider"].combine_chunks(),
            pc.coalesce(sub["response_model"], sub["request_model"]).combine_chunks(),
            *(pc.fill_null(sub[c], 0).combine_chunks()
              for c in ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens")),
            np.asarray(sub["start_time_unix_nano"].to_numpy(), np.int64))
        for row, cost in zip(rows.tolist(), computed.to_pylist()):
            costs[row] = cost
            sources[row] = PRICE_SOURCE if cost is not None else None
            versions[row] = PRICE_VERSION if cost is not None else None
    return costs, sources, versions, len(rows)


def reprice(lake_dir: Path, since: dt.date, max_call_cost_usd: float = DEFAULT_MAX_CALL_COST_USD) -> RepriceResult:
    """Reprice every span that started on or after ``since`` (UTC day) and rewrite those partitions;
    ``cost_suspect`` is recomputed for every row against ``max_call_cost_usd``."""
    path = str(table_path(lake_dir, schema.SPANS))
    predicate = f"{schema.PARTITION_COLUMN} >= '{since.isoformat()}'"
    for attempt in range(_RETRIES):
        target = DeltaTable(path)
        data = target.to_pyarrow_dataset().to_table(
            filter=pc.field(schema.PARTITION_COLUMN) >= pa.scalar(since, pa.date32()))
        prices = PriceBook()
        costs, sources, versions, done = _new_costs(data, prices)
        for name, values, kind in (("cost_usd", costs, pa.float64()), ("cost_source", sources, pa.string()),
                                   ("price_version", versions, pa.string())):
            position = data.schema.get_field_index(name)
            data = data.set_column(position, data.schema.field(position), pa.array(values, kind))
        suspect = cost_suspect(pa.array(costs, pa.float64()), max_call_cost_usd)
        if "cost_suspect" in data.column_names:  # a lake written before the flag existed gains it (schema merge)
            position = data.schema.get_field_index("cost_suspect")
            data = data.set_column(position, data.schema.field(position), suspect)
        else:
            data = data.append_column(pa.field("cost_suspect", pa.bool_()), suspect)
        if data.num_rows == 0:
            return RepriceResult(0, 0, 0)
        data = data.sort_by([(schema.SORT_COLUMN[schema.SPANS], "ascending")])
        try:
            write_deltalake(target, data, mode="overwrite", predicate=predicate,
                            partition_by=[schema.PARTITION_COLUMN], schema_mode="merge",
                            writer_properties=WriterProperties(compression="ZSTD"))
        except CommitFailedError:
            time.sleep(0.5 * (attempt + 1))  # the collector appended meanwhile: read again, price again
            continue
        return RepriceResult(data.num_rows, done, prices.unpriced)
    raise RuntimeError(f"reprice: could not commit after {_RETRIES} attempts (concurrent writes)")
