"""`spanlake demo` starts every part, and one SIGINT stops them all: exit 0, no process left, data kept."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from harness import free_port, query

PARTS = ("collector", "fake-llm", "ui", "traffic", "analyze")


def _sessions_of_children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "sid=", "--ppid", str(pid)], capture_output=True, text=True, check=False).stdout
    return {int(x) for x in out.split()}


def _alive_in_sessions(sessions: set[int]) -> list[str]:
    out = subprocess.run(["ps", "-eo", "sid=,pid=,args="], capture_output=True, text=True, check=False).stdout
    return [line for line in out.splitlines() if line.split() and int(line.split()[0]) in sessions]


def test_demo_starts_every_part_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ports = {flag: str(free_port()) for flag in ("--grpc-port", "--http-port", "--llm-port", "--ui-port")}
    cmd = [sys.executable, "-m", "spanlake.ui.cli", "demo", "--data-dir", str(data_dir), "--seed", "5",
           "--backfill-hours", "0.5", "--rate", "2000", "--speed", "60", "--latency-scale", "0.05",
           "--analyze-every", "5", *[x for kv in ports.items() for x in kv]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    sessions: set[int] = set()
    try:
        deadline = time.monotonic() + 90
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "What to look for" in line:
                break
        text = "".join(output)
        assert "spanlake demo is running" in text, text
        assert f"http://127.0.0.1:{ports['--ui-port']}" in text
        assert f"OTLP/HTTP http://127.0.0.1:{ports['--http-port']}" in text
        time.sleep(6)  # live traffic and one analytics run
        sessions = _sessions_of_children(proc.pid)
        assert len(sessions) == len(PARTS), text
        logs = {p.stem for p in (data_dir / "demo-logs").glob("*.log")}
        assert set(PARTS) <= logs
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        output.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, "".join(output)
    assert _alive_in_sessions(sessions) == []
    assert "stopped; the data stays" in "".join(output)
    assert query(data_dir, "select count(*) n from spans").to_pylist()[0]["n"] > 1000
    analyze_log = (data_dir / "demo-logs" / "analyze.log").read_text()
    assert "analyze:" in analyze_log and "0 failed" in analyze_log, analyze_log[-2000:]
