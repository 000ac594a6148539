"""UI benchmark (a script, not a test): every page's first render through Streamlit's AppTest over the
10-million-span lake from ``bench/analytics.py``, and opening one trace.

    .venv/bin/python bench/ui.py [--dir /tmp/spanlake-bench] [--window 24h]

Goals on this machine: each page's first render ≤ 2 s, opening a trace ≤ 300 ms. "First render" is
with every cache empty except the open snapshot (cold: the snapshot opened too, shown separately).
The lake ends at 2026-11-23 00:00 UTC, so the app is pinned there with ``?as_of=``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "ui" / "streamlit_app.py"
PAGES = ("overview", "traces", "latency", "cost", "quality", "prompts", "models", "alerts")
AS_OF = "2026-11-23T00:00:00+00:00"
CONFIG = """
[[budgets]]
name = "all-daily"
period = "day"
hard_usd = 5000.0

[[budgets]]
name = "per-feature-monthly"
period = "month"
hard_usd = 20000.0
per = "feature"

[[slo]]
name = "p99-under-5s"
metric = "duration_p99"
max = 5.0
"""


def render(page: str, window: str, params: dict[str, str] | None = None, clear_resources: bool = False) -> float:
    """Seconds for one AppTest run of ``page`` with the data caches emptied first."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    if clear_resources:
        st.cache_resource.clear()
    app = AppTest.from_file(str(APP), default_timeout=120)
    app.query_params.update({"as_of": AS_OF, "window": window, **(params or {})})
    if page != "overview":
        app.switch_page(f"app_pages/{page}.py")
    started = time.perf_counter()
    app.run()
    seconds = time.perf_counter() - started
    if app.exception:
        raise RuntimeError(f"{page}: {app.exception[0].value}")
    return seconds


def sample_trace(lake_dir: Path) -> tuple[str, dt.datetime]:
    """A trace from three days before the lake's end (any trace: ids are random)."""
    from spanlake.collector.storage.reader import open_snapshot

    with open_snapshot(lake_dir) as snap:
        trace_id, start_us = snap.con.execute(
            "SELECT trace_id, epoch_us(start_time) FROM spans WHERE dt = DATE '2026-11-20' LIMIT 1").fetchone()
    return trace_id, dt.datetime.fromtimestamp(start_us / 1e6, dt.timezone.utc)


def trace_call(trace_id: str, at: dt.datetime, window: str) -> float:
    """The trace view's data call alone (spans, content, scores), caches empty, snapshot open."""
    import streamlit as st
    from spanlake.analytics.window import Window, parse_duration
    from spanlake.ui import data

    st.cache_data.clear()
    end = dt.datetime.fromisoformat(AS_OF)
    scope = data.make_scope(Window(end - parse_duration(window), end))
    started = time.perf_counter()
    view = data.trace(scope, trace_id, at)
    seconds = time.perf_counter() - started
    assert len(view.spans), "sample trace not found"
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/spanlake-bench"))
    parser.add_argument("--window", default="24h")
    args = parser.parse_args()
    if not (args.dir / "lake").exists():
        subprocess.run([sys.executable, str(Path(__file__).with_name("analytics.py")), "--dir", str(args.dir)],
                       check=True)
    config = args.dir / "bench-ui.toml"
    config.write_text(CONFIG)
    os.environ.update(SPANLAKE_DATA_DIR=str(args.dir), SPANLAKE_CONFIG=str(config))
    cold = render("overview", args.window, clear_resources=True)
    print(f"cold start (snapshot opened + overview): {cold:6.2f} s")
    print(f"{'page (' + args.window + ' window)':<36} {'first render':>12}  goal 2 s")
    for page in PAGES:
        seconds = min(render(page, args.window) for _ in range(2))
        print(f"  {page:<34} {seconds:10.2f} s  {'ok' if seconds <= 2 else 'SLOW'}")
    trace_id, at = sample_trace(args.dir / "lake")
    call = min(trace_call(trace_id, at, args.window) for _ in range(3))
    print(f"  {'open a trace: data (at= known)':<34} {call * 1000:8.0f} ms  goal 300 ms "
          f"{'ok' if call <= 0.3 else 'SLOW'}")
    page = min(render("traces", args.window, {"trace_id": trace_id, "at": at.isoformat()}) for _ in range(3))
    print(f"  {'open a trace: whole page':<34} {page * 1000:8.0f} ms")
    unknown = min(render("traces", args.window, {"trace_id": trace_id}) for _ in range(2))
    print(f"  {'open a trace: link without at=':<34} {unknown * 1000:8.0f} ms (reads the window's days)")


if __name__ == "__main__":
    main()
