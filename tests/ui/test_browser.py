"""The real thing: `spanlake ui` in a subprocess over the known lake, every page opened in headless
Chromium, no Streamlit exception box anywhere, one screenshot per page under test-artifacts/ui/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser import Browser, serve_ui
from harness import REPO, free_port
from known_lake import ANSWER, KNOWN_TRACE, KnownLake

ARTIFACTS = REPO / "test-artifacts" / "ui"
PAGES = {  # url path → text that is on the page once it has rendered
    "": "Requests", "overview": "Requests", "traces": "newest matching traces", "latency": "SLOs", "cost": "Top spenders",
    "quality": "Output length drift", "quality?section=Errors+and+failure+patterns": "Top failure patterns", "prompts": "All prompts", "models": "Unpinned aliases",
    "alerts": "Resolved (1)", f"traces?trace_id={KNOWN_TRACE}": ANSWER,
}


@pytest.fixture(scope="module")
def ui_url(known: KnownLake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`spanlake ui` on a free loopback port over the known lake."""
    log = tmp_path_factory.mktemp("ui-log") / "ui.log"
    with serve_ui(known.data_dir, known.config, free_port(), log) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = Browser(height=1600).start()
    yield chromium
    chromium.close()


@pytest.mark.parametrize("path", list(PAGES))
def test_page_renders_in_chromium(ui_url: str, browser: Browser, path: str) -> None:
    state = browser.open(f"{ui_url}/{path}", PAGES[path])
    name = (path.split("?")[0] or "overview") + ("-trace" if "trace_id" in path else "") + (
        "-errors" if "section" in path else "")
    browser.screenshot(ARTIFACTS / f"{name}.png")
    assert state.exceptions == [], state.exceptions[0]
    assert "Page not found" not in state.text, f"/{path} is not a page of its own"
