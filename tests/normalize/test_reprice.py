"""``spanlake reprice``: stored costs recomputed from genai-prices in one atomic Delta commit per run."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake
from replays import Lakes, rows


def _costs(data: Path) -> dict[str, tuple[float | None, str | None]]:
    return {r["span_id"]: (r["cost_usd"], r["cost_source"])
            for r in rows(data, "select span_id, cost_usd, cost_source from spans where operation is not null")}


def test_reprice_restores_computed_costs_and_keeps_reported_ones(lakes: Lakes, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(lakes.get("openlit", "grpc"), data)  # openlit reports its own costs
    before = _costs(data)
    spans_path = str(data / "lake" / "spans")
    # Spoil every stored cost (as an outdated price table would), in one overwrite.
    table = DeltaTable(spans_path).to_pyarrow_table()
    spoiled = pa.array([None if c is None else 999.0 for c in table["cost_usd"].to_pylist()], pa.float64())
    table = table.set_column(table.schema.get_field_index("cost_usd"), "cost_usd", spoiled)
    write_deltalake(spans_path, table, mode="overwrite", partition_by=["dt"])
    version = DeltaTable(spans_path).version()

    done = subprocess.run([sys.executable, "-m", "spanlake.ui.cli", "reprice", "--since", "2026-11-01",
                           "--data-dir", str(data)], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert DeltaTable(spans_path).version() == version + 1  # one atomic commit
    after = _costs(data)
    for span_id, (cost, source) in before.items():
        if source == "emitter":  # reported by openlit: never recomputed, so the spoiled value stays
            assert after[span_id] == (999.0, "emitter")
        elif cost is None:
            assert after[span_id] == (None, None)
    # openlit's fail-429 spans have no tokens (no cost, not "unknown"); nothing here was priced by us.
    assert "repriced 0 of" in done.stdout


def test_reprice_recomputes_genai_prices_costs(lakes: Lakes, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(lakes.get("traceloop", "grpc"), data)
    before = _costs(data)
    spans_path = str(data / "lake" / "spans")
    table = DeltaTable(spans_path).to_pyarrow_table()
    priced = pc.equal(table["cost_source"], "genai-prices")
    spoiled = pc.if_else(priced, pa.scalar(999.0), table["cost_usd"])
    table = table.set_column(table.schema.get_field_index("cost_usd"), "cost_usd", spoiled)
    write_deltalake(spans_path, table, mode="overwrite", partition_by=["dt"])

    done = subprocess.run([sys.executable, "-m", "spanlake.ui.cli", "reprice", "--since", "2026-11-22",
                           "--data-dir", str(data)], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after = _costs(data)
    assert after.keys() == before.keys()
    for span_id, (cost, source) in before.items():
        got_cost, got_source = after[span_id]
        assert got_source == source
        assert (got_cost is None and cost is None) or math.isclose(got_cost, cost, rel_tol=1e-9)
    repriced = sum(1 for _, s in before.values() if s == "genai-prices")
    assert f"repriced {repriced} of" in done.stdout
