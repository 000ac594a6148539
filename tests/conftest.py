"""Shared fixtures: a clean environment, and a real collector process per test module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import CollectorProcess


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees SPANLAKE_* or OTEL_* settings from the machine it runs on."""
    for key in list(os.environ):
        if key.startswith(("SPANLAKE_", "OTEL_")):
            monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    """A collector on free loopback ports with its own data directory, shared by a test module."""
    data_dir: Path = tmp_path_factory.mktemp("lake") / "data"
    data_dir.mkdir()
    proc = CollectorProcess(data_dir, env={"SPANLAKE_FLUSH_INTERVAL_S": "0.2"}).start()
    yield proc
    code = proc.stop()
    assert code == 0, proc.read_log()[-3000:]
