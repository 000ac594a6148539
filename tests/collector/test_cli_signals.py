"""The collector stops cleanly on a terminal's Ctrl-C (SIGINT to the whole process group)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import free_port


def test_ctrl_c_to_the_process_group_stops_quietly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "spanlake.ui.cli", "collector", "--data-dir", str(data),
                             "--grpc-port", "0", "--http-port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (data / "collector.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (data / "collector.json").exists()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert not (data / "collector.json").exists()


def test_fake_llm_takes_its_own_flags() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "spanlake.ui.cli", "fake-llm", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert str(port) in line
    finally:
        proc.terminate()
        proc.wait(10)
