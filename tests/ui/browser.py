"""A headless Chromium driven over the DevTools protocol (websockets ships with Streamlit; nothing to install).

``--dump-dom``/``--screenshot`` alone return before Streamlit's websocket has drawn the page, so the
test waits, in the page, until the app has finished running and the expected text is on screen.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")
_DEVTOOLS = re.compile(r"DevTools listening on (ws://[^\s]+)")
READY_JS = """(() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const running = document.querySelector('[data-testid="stStatusWidget"] [data-testid="stStatusWidgetRunningIcon"]')
    || (app && app.getAttribute('data-test-script-state') === 'running');
  return JSON.stringify({ready: !!app && !running, text: document.body ? document.body.innerText : '',
                         exceptions: [...document.querySelectorAll('[data-testid="stException"]')]
                           .map(e => e.innerText.slice(0, 2000))});
})()"""


def chromium_path() -> str:
    """The Debian chromium binary, or a clear failure message (the test installs nothing itself)."""
    path = shutil.which(CHROMIUM) or shutil.which("chromium")
    if path is None:
        raise RuntimeError("Debian `chromium` is not installed: apt-get install -y chromium (make test/CI does it)")
    return path


@dataclass
class PageState:
    text: str
    exceptions: list[str]


@dataclass
class Browser:
    """One headless Chromium with one tab; ``open`` loads a URL and waits for Streamlit to finish."""

    width: int = 1400
    height: int = 1000
    proc: subprocess.Popen[str] | None = None
    ws: ClientConnection | None = None
    profile: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="spanlake-chromium-")))
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _stack: ExitStack = field(default_factory=ExitStack)

    def start(self) -> Browser:
        self.proc = subprocess.Popen([chromium_path(), *FLAGS, f"--user-data-dir={self.profile}",
                                      "--remote-debugging-port=0", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = self._devtools_port()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5))
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                self.ws = self._stack.enter_context(connect(pages[0]["webSocketDebuggerUrl"], max_size=None,
                                                            open_timeout=10))
                break
            time.sleep(0.2)
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height, deviceScaleFactor=1,
                  mobile=False)
        return self

    def _devtools_port(self) -> int:
        assert self.proc is not None and self.proc.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            found = _DEVTOOLS.search(line)
            if found:
                return int(found.group(1).split(":")[2].split("/")[0])
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError("chromium did not start its DevTools endpoint")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result (events arriving meanwhile are skipped)."""
        assert self.ws is not None
        ident = next(self._ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def state(self) -> PageState:
        result = self.call("Runtime.evaluate", expression=READY_JS, returnByValue=True)
        value = json.loads(result["result"]["value"])
        return PageState(value["text"], value["exceptions"]) if value["ready"] else PageState("", [])

    def open(self, url: str, expect: str, timeout: float = 45.0) -> PageState:
        """Load ``url`` and wait until the app is idle with ``expect`` in the page text (settled for 1 s)."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        state = PageState("", [])
        while time.monotonic() < deadline:
            time.sleep(0.5)
            state = self.state()
            if state.exceptions or expect in state.text:
                time.sleep(1.0)
                return self.state() if not state.exceptions else state
        raise TimeoutError(f"{url}: {expect!r} never appeared; page text: {state.text[:500]!r}")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self._stack.close()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


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


@contextlib.contextmanager
def serve_ui(data_dir: Path, config: Path, port: int, log_path: Path) -> Iterator[str]:
    """`spanlake ui` over ``data_dir`` on a loopback ``port`` (its output in ``log_path``); yields its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPANLAKE_", "OTEL_"))}
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("spanlake")), "ui", "--data-dir", str(data_dir),
                                 "--config", str(config), "--port", str(port)], env=env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=data_dir)
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
