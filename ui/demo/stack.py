"""Process orchestration for `spanlake demo`: start every part on 127.0.0.1, watch it, stop it cleanly.

Order: collector, fake LLM and UI start together; once collector and fake LLM answer, the backfill
writes the story's history; then the live sample app and `spanlake analyze --every N` start. Each
child runs in its own session (its own process group) so a terminal Ctrl-C reaches only this process,
which then stops the children in dependency order — the app first (it flushes its telemetry to a still
running collector), the collector last (it commits what it holds) — escalating SIGINT → SIGTERM →
SIGKILL of the child's whole group. Children also get SIGTERM if this process dies (PR_SET_PDEATHSIG on
Linux), so none is orphaned. The data directory is kept; a second start continues the same story.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from spanlake.ui.demo.story import Story, StoryConfig

HOST = "127.0.0.1"
STATE_FILE = "demo.json"
CONFIG_FILE = "spanlake-demo.toml"
READY_FILE = "collector.json"  # written by the collector once both receivers listen

DEMO_CONFIG = """\
# Written by `spanlake demo`: the budgets and objectives its story is measured against.
[[budgets]]
name = "research-agent-daily"
period = "day"
soft_usd = 8.0
hard_usd = 16.0
feature = "research-agent"

[[budgets]]
name = "all-monthly"
period = "month"
soft_usd = 600.0
hard_usd = 1000.0

[[slo]]
name = "summary-ttft"
metric = "ttft_p99"
max = 1.5
request_model = "gpt-4o-2024-08-06"

[[slo]]
name = "chat-errors"
metric = "error_rate"
max = 0.02
feature = "support-chat"
"""


@dataclass(frozen=True)
class DemoOptions:
    """Everything `spanlake demo` was asked for (flags, resolved by the CLI)."""

    data_dir: Path
    config: Path | None = None
    seed: int = 7
    speed: float = 1.0
    rate: float = 360.0
    backfill_hours: float = 48.0
    latency_scale: float = 1.0
    grpc_port: int = 4317
    http_port: int = 4318
    llm_port: int = 8765
    ui_port: int = 8501
    analyze_every: float = 30.0
    duration: float | None = None
    ui: bool = True
    ui_accepts_config: bool = False
    python: str = sys.executable


@dataclass
class Child:
    """One started part of the stack and where its output goes."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    expected_exit: bool = False  # a one-shot job (the backfill) may end on its own

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the demo process dies (Linux), so nothing is orphaned."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Stack:
    """The running children, started and stopped in order."""

    options: DemoOptions
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    children: list[Child] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    hurry: threading.Event = field(default_factory=threading.Event)

    @property
    def logs_dir(self) -> Path:
        return self.options.data_dir / "demo-logs"

    def spawn(self, name: str, args: Sequence[str], expected_exit: bool = False) -> Child:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log = self.logs_dir / f"{name}.log"
        with open(log, "ab") as sink:
            proc = subprocess.Popen([self.options.python, *args], stdin=subprocess.DEVNULL, stdout=sink,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_die_with_parent)  # noqa: PLW1509 - spawned from the main thread only
        child = Child(name, proc, log, expected_exit)
        self.children.append(child)
        return child

    def failed(self) -> Child | None:
        """A child that ended although it should still run."""
        return next((c for c in self.children if not c.alive() and not c.expected_exit), None)

    def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait for ``condition`` while watching for Ctrl-C and dead children."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.stop.is_set():
                raise Interrupted
            if (dead := self.failed()) is not None:
                raise ChildFailed(dead)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")
            self.stop.wait(0.1)

    def shutdown(self, order: Sequence[Sequence[str]]) -> None:
        """Stop children group by group (names in ``order``; the rest first); escalate when slow."""
        named = {c.name for group in order for c in self.children if c.name in group}
        groups = [[c for c in self.children if c.name not in named]]
        groups += [[c for c in self.children if c.name in group] for group in order]
        for group in groups:
            _stop_group([c for c in group if c.alive() or _group_alive(c.proc.pid)], self.hurry)


class Interrupted(Exception):
    """Ctrl-C (or the --duration) ended the demo."""


class ChildFailed(Exception):
    def __init__(self, child: Child) -> None:
        super().__init__(child.name)
        self.child = child


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _signal_group(child: Child, sig: int) -> None:
    try:
        os.killpg(child.proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop_group(children: list[Child], hurry: threading.Event, grace: float = 15.0) -> None:
    """SIGINT to each child (as Ctrl-C would; it stops its own helpers, e.g. the collector its writers);
    SIGTERM to the child's whole process group after ``grace``; SIGKILL to it after 5 s more."""
    for sig, wait_s in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        pending = [c for c in children if c.alive() or _group_alive(c.proc.pid)]
        if not pending:
            return
        for child in pending:
            if hurry.is_set():
                _signal_group(child, signal.SIGKILL)
            elif sig == signal.SIGINT:
                if child.alive():
                    child.proc.send_signal(sig)
            else:
                _signal_group(child, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(c.alive() or _group_alive(c.proc.pid) for c in pending):
            for child in pending:
                child.proc.poll()
            time.sleep(0.05)


# --- the demo's state across starts -----------------------------------------------------------------
def load_state(data_dir: Path, now: dt.datetime) -> tuple[dt.datetime, dt.datetime | None]:
    """(story anchor, time the previous run's data reaches) — a restart continues the same story."""
    try:
        state = json.loads((data_dir / STATE_FILE).read_text())
        covered = state.get("covered_until")
        return (dt.datetime.fromisoformat(state["anchor"]),
                dt.datetime.fromisoformat(covered) if covered else None)
    except (OSError, ValueError, KeyError):
        return now, None


def save_state(data_dir: Path, anchor: dt.datetime, covered_until: dt.datetime | None) -> None:
    state = {"anchor": anchor.isoformat(), "covered_until": covered_until.isoformat() if covered_until else None}
    tmp = data_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(data_dir / STATE_FILE)


def backfill_range(anchor: dt.datetime, covered: dt.datetime | None, now: dt.datetime, hours: float
                   ) -> tuple[dt.datetime, dt.datetime]:
    """History to write: the last ``hours`` before now, minus what an earlier run already wrote."""
    start = now - dt.timedelta(hours=hours)
    return (max(start, covered) if covered else start), now


# --- readiness probes ---------------------------------------------------------------------------------
def collector_ready(data_dir: Path, pid: int) -> bool:
    try:
        return int(json.loads((data_dir / READY_FILE).read_text())["pid"]) == pid
    except (OSError, ValueError, KeyError):
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return 200 <= resp.status < 300
    except OSError:
        return False


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


# --- the demo -----------------------------------------------------------------------------------------
def run_demo(options: DemoOptions, out: IO[str] | None = None) -> int:
    """Start the whole stack, print where to look, run until Ctrl-C (or ``duration``), stop it all."""
    stack = Stack(options, out or sys.stdout)
    options.data_dir.mkdir(parents=True, exist_ok=True)
    previous = {sig: signal.signal(sig, _on_signal(stack)) for sig in (signal.SIGINT, signal.SIGTERM)}
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    anchor, covered = load_state(options.data_dir, now)
    story = Story(_story_config(options, anchor))
    code = 0
    try:
        _start(stack, story, now, covered)
        save_state(options.data_dir, anchor, None)
        end = None if options.duration is None else time.monotonic() + options.duration
        stack.wait(lambda: end is not None and time.monotonic() >= end, float("inf"), "the end")
    except Interrupted:
        pass
    except ChildFailed as exc:
        _say(stack, f"\n{exc.child.name} stopped unexpectedly (exit {exc.child.proc.returncode}); "
                    f"its log {exc.child.log}:\n{exc.child.tail()}")
        code = 1
    except TimeoutError as exc:
        _say(stack, f"\n{exc}; see the logs in {stack.logs_dir}")
        code = 1
    finally:
        _say(stack, "\nstopping the demo ...")
        stack.shutdown([["traffic", "backfill"], ["analyze", "ui", "fake-llm"], ["collector"]])
        save_state(options.data_dir, anchor, dt.datetime.now(dt.timezone.utc))
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _say(stack, f"stopped; the data stays in {options.data_dir}")
    return code


def _on_signal(stack: Stack) -> Callable[[int, object], None]:
    def handler(signum: int, frame: object) -> None:
        if stack.stop.is_set():  # a second Ctrl-C: stop hard
            stack.hurry.set()
        stack.stop.set()
    return handler


def _story_config(options: DemoOptions, anchor: dt.datetime) -> StoryConfig:
    return StoryConfig(seed=options.seed, anchor=anchor, backfill=dt.timedelta(hours=options.backfill_hours),
                       visits_per_hour=options.rate, latency_scale=options.latency_scale)


def _config_path(options: DemoOptions) -> Path:
    if options.config is not None:
        return options.config
    path = options.data_dir / CONFIG_FILE
    if not path.exists():
        path.write_text(DEMO_CONFIG)
    return path


def _start(stack: Stack, story: Story, now: dt.datetime, covered: dt.datetime | None) -> None:
    o = stack.options
    config = str(_config_path(o))
    data = str(o.data_dir)
    cli = ["-m", "spanlake.ui.cli"]
    (o.data_dir / READY_FILE).unlink(missing_ok=True)  # a stale one from a killed run
    collector = stack.spawn("collector", [*cli, "collector", "--data-dir", data, "--config", config,
                                          "--host", HOST, "--grpc-port", str(o.grpc_port),
                                          "--http-port", str(o.http_port)])
    stack.spawn("fake-llm", ["-m", "spanlake.instrumentation.fake_llm", "--host", HOST, "--port", str(o.llm_port),
                             "--fail-seed", str(o.seed), "--swap", story.swap_spec(now, o.speed)])
    if o.ui:
        ui_args = [*cli, "ui", "--data-dir", data, "--host", HOST, "--port", str(o.ui_port)]
        stack.spawn("ui", ui_args + (["--config", config] if o.ui_accepts_config else []))
    _say(stack, f"spanlake demo: starting collector, fake LLM{', UI' if o.ui else ''} (logs in {stack.logs_dir})")
    llm = f"http://{HOST}:{o.llm_port}"
    stack.wait(lambda: collector_ready(o.data_dir, collector.proc.pid), 90, "the collector becoming ready")
    stack.wait(lambda: http_ok(f"{llm}/healthz"), 30, "the fake LLM answering")
    otlp = f"http://{HOST}:{o.http_port}"
    story_args = ["--collector", otlp, "--llm", llm, "--anchor", story.config.anchor.isoformat(),
                  "--seed", str(o.seed), "--backfill-hours", f"{o.backfill_hours:g}", "--rate", f"{o.rate:g}",
                  "--latency-scale", f"{o.latency_scale:g}"]
    start, end = backfill_range(story.config.anchor, covered, now, o.backfill_hours)
    if end - start > dt.timedelta(minutes=1):
        _say(stack, f"writing {(end - start).total_seconds() / 3600:.1f} h of history through the collector ...")
        job = stack.spawn("backfill", ["-m", "spanlake.ui.demo.traffic", "backfill", *story_args,
                                       "--from", start.isoformat(), "--until", end.isoformat()], expected_exit=True)
        stack.wait(lambda: not job.alive(), 600, "the backfill")
        if job.proc.returncode != 0:
            raise ChildFailed(job)
        _say(stack, job.tail(1))
    stack.spawn("traffic", ["-m", "spanlake.ui.demo.traffic", "live", *story_args, "--speed", f"{o.speed:g}"])
    stack.spawn("analyze", [*cli, "analyze", "--data-dir", data, "--config", config,
                            "--every", f"{o.analyze_every:g}"])
    if o.ui:
        try:
            stack.wait(lambda: port_open(o.ui_port), 60, "the UI listening")
        except TimeoutError:
            _say(stack, "the UI is not listening yet; see its log")
    _say(stack, banner(o, config))


def banner(o: DemoOptions, config: str) -> str:
    """What runs where, and what the story puts on which page."""
    ui = (f"  UI         http://{HOST}:{o.ui_port}" if o.ui else
          "  UI         not available: this build has no `spanlake ui` command yet; "
          "the rest of the demo runs (try `spanlake report`)")
    return f"""
spanlake demo is running (seed {o.seed}, {o.speed:g}x). Ctrl-C stops everything; the data stays.
{ui}
  collector  OTLP/gRPC {HOST}:{o.grpc_port}   OTLP/HTTP http://{HOST}:{o.http_port}   (healthz, /metrics, /v1/budgets)
  fake LLM   http://{HOST}:{o.llm_port}/v1 (OpenAI)   http://{HOST}:{o.llm_port} (Anthropic)
  data       {o.data_dir}   config {config}   analytics every {o.analyze_every:g}s

What to look for:
  Prompts   summarise-ticket v4 against v3: output twice as long, costlier, fewer thumbs-up -> roll back
  Models    gpt-4o-2024-08-06 answered by gpt-4o-2024-11-20 (new fingerprint) since the silent swap
  Quality   output-length drift of summarise-ticket on the swapped model; feedback and judge scores
  Cost      research-agent's spike (a looping agent) against its daily budget; top users and sessions
  Traces    support-chat: a 429 from OpenAI, then the fallback to Anthropic in the same trace
  Overview  / Latency / Alerts: the error bursts, TTFT by model and the alerts they raise
"""


def _say(stack: Stack, text: str) -> None:
    print(text, file=stack.out, flush=True)
