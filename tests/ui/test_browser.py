"""The real thing: `spanlake ui` in a subprocess over the known lake, every page opened in headless
Chromium, no Streamlit exception box anywhere, one screenshot per page under test-artifacts/ui/."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import Browser
from harness import REPO, free_port
from known_lake import ANSWER, KNOWN_TRACE, KnownLake

ARTIFACTS = REPO / "test-artifacts" / "ui"
PAGES = {  # url path → text that is on the page once it has rendered
    "": "Requests", "overview": "Requests", "traces": "newest matching traces", "latency": "SLOs", "cost": "Top spenders",
    "quality": "Output length drift", "quality?section=Errors+and+failure+patterns": "Top failure patterns", "prompts": "All prompts", "models": "Unpinned aliases",
    "alerts": "Resolved (1)", f"traces?trace_id={KNOWN_TRACE}": ANSWER,
}


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"spanlake ui exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError("spanlake ui never became healthy")


@pytest.fixture(scope="module")
def ui_url(known: KnownLake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`spanlake ui` on a free loopback port over the known lake."""
    port = free_port()
    spanlake = Path(sys.executable).with_name("spanlake")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPANLAKE_", "OTEL_"))}
    log = (tmp_path_factory.mktemp("ui-log") / "ui.log").open("wb")
    proc = subprocess.Popen([str(spanlake), "ui", "--data-dir", str(known.data_dir), "--config", str(known.config),
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=known.data_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


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
