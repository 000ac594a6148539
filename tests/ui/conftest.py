"""UI fixtures: one known lake per session, and an AppTest of the app pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from harness import REPO
from known_lake import KnownLake, build_known_lake
from streamlit.testing.v1 import AppTest

APP = REPO / "ui" / "streamlit_app.py"


@pytest.fixture(scope="session")
def known(tmp_path_factory: pytest.TempPathFactory) -> KnownLake:
    return build_known_lake(tmp_path_factory.mktemp("ui") / "data")


@pytest.fixture
def app(known: KnownLake, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    """The app as `spanlake ui --data-dir ... --config ...` would start it, caches empty."""
    monkeypatch.setenv("SPANLAKE_DATA_DIR", str(known.data_dir))
    monkeypatch.setenv("SPANLAKE_CONFIG", str(known.config))
    monkeypatch.chdir(Path(known.data_dir))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield AppTest.from_file(str(APP), default_timeout=60)
    st.cache_resource.clear()
