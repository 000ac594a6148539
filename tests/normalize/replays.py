"""Replays of every captured GenAI payload through a real collector, one lake per capture and protocol.

(Helpers for tests/normalize; the session fixture itself is in conftest.py.)

Each capture goes into its own collector (one writer, so cross-request de-duplication is exercised
deterministically) with its original ids and timestamps; the collector is stopped and the lake is
then only read. Lakes are cached for the session, so every test module can query them.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
from harness import PEER_SPANS, REPLAY_TOOL, REPO, CollectorProcess, query

FIXTURES = REPO / "tests" / "fixtures"
CAPTURES: dict[str, Path] = {
    **{p.name: p for p in sorted(FIXTURES.iterdir()) if p.is_dir() and p != PEER_SPANS},
    **{p.name: p for p in sorted(PEER_SPANS.iterdir()) if p.is_dir()},
}
_SERVICES = {"traces": "opentelemetry.proto.collector.trace.v1.TraceService",
             "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
             "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService"}
_TOOL = REPLAY_TOOL


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location("replay_fixtures", _TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def replay_grpc(target: str, capture: Path) -> None:
    tool = _tool()
    with grpc.insecure_channel(target) as channel:
        for path in tool.collect([str(capture)]):
            _, signal, _ext = tool.NAME_RE.match(Path(path).name).groups()
            export = channel.unary_unary(f"/{_SERVICES[signal]}/Export", request_serializer=None,
                                         response_deserializer=None)
            export(Path(path).read_bytes(), timeout=10)


def replay_http(url: str, capture: Path) -> None:
    done = subprocess.run([sys.executable, str(_TOOL), str(capture), "--endpoint", url, "--gzip"], check=False,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


class Lakes:
    """Replayed lakes by (capture, protocol), built on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._done: dict[tuple[str, str], Path] = {}

    def get(self, capture: str, protocol: str) -> Path:
        key = (capture, protocol)
        if key not in self._done:
            data = self.root / f"{capture}-{protocol}" / "data"
            data.mkdir(parents=True)
            proc = CollectorProcess(data, env={"SPANLAKE_FLUSH_INTERVAL_S": "0.2", "SPANLAKE_WRITERS": "1"}).start()
            try:
                if protocol == "grpc":
                    replay_grpc(proc.grpc_target, CAPTURES[capture])
                else:
                    replay_http(proc.http_url, CAPTURES[capture])
            finally:
                code = proc.stop()  # a graceful stop drains the WAL into the lake
            assert code == 0, proc.read_log()[-3000:]
            self._done[key] = data
        return self._done[key]


def rows(data_dir: Path, sql: str) -> list[dict[str, Any]]:
    return query(data_dir, sql).to_pylist()
