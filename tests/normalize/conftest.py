"""The session's replayed lakes (see replays.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from replays import Lakes


@pytest.fixture(scope="session")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lakes]:
    yield Lakes(tmp_path_factory.mktemp("replays"))
