"""Fixtures for analytics tests: a temporary lake directory and a snapshot opener."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from spanlake.collector.storage.reader import LakeSnapshot, open_snapshot


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "lake"


@pytest.fixture
def snapshot(lake_dir: Path) -> Iterator[Callable[[], LakeSnapshot]]:
    """Call it after writing the lake; every snapshot opened is closed at teardown."""
    opened: list[LakeSnapshot] = []

    def _open() -> LakeSnapshot:
        snap = open_snapshot(lake_dir, threads=2)
        opened.append(snap)
        return snap

    yield _open
    for snap in opened:
        snap.close()
