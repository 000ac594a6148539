"""The ``spanlake`` command line: one entry point for every part of spanlake.

It is the outermost layer: it parses flags, builds the one Settings object (flags > SPANLAKE_*
env > config file) and hands it to the component the subcommand names. Heavy imports happen
inside each subcommand so ``spanlake --help`` stays fast and the light install still works.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spanlake.ui.erase_command import add_erase_parser, run_erase

logger = logging.getLogger("spanlake")


def _settings(args: argparse.Namespace, **flags: Any) -> Any:
    from spanlake.collector.settings import load_settings

    overrides = {"data_dir": getattr(args, "data_dir", None), **flags}
    return load_settings(overrides, os.environ, getattr(args, "config", None))


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")


def cmd_collector(args: argparse.Namespace) -> int:
    from spanlake.collector.server import Collector, wait_forever

    settings = _settings(args, host=args.host, grpc_port=args.grpc_port, http_port=args.http_port,
                         retention_days=args.retention_days, auth_token=args.auth_token)
    _setup_logging(settings.log_level)
    collector = Collector(settings, extra_routes=_analytics_routes(settings))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    collector.start()
    print(f"spanlake collector: OTLP/gRPC {settings.host}:{collector.grpc.port}  "
          f"OTLP/HTTP http://{settings.host}:{collector.http.port}  data {settings.data_dir}", flush=True)
    wait_forever(collector, stop)
    collector.stop(settings.shutdown_timeout_s)
    return 0


def _analytics_routes(settings: Any) -> dict[str, Any]:
    """GET /v1/budgets, served by analytics (the collector itself never imports analytics)."""
    try:
        from spanlake.analytics.budgets import budgets_route_from_settings
    except ImportError:  # light install without the analytics extras: no budgets route
        return {}
    return {"/v1/budgets": budgets_route_from_settings(settings)}


def _progress_bar(i: int, total: int, name: str) -> None:
    width = 30
    filled = width * i // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {i}/{total} {name:<24}")
    if i >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def cmd_analyze(args: argparse.Namespace) -> int:
    import datetime as dt

    from spanlake.analytics import Window, analyze, load_config
    from spanlake.ui.formatting import terminal_safe

    settings = _settings(args)
    _setup_logging(settings.log_level)
    config = load_config(settings.extra)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while True:
        now = dt.datetime.now(dt.timezone.utc)
        progress = _progress_bar if sys.stderr.isatty() else None
        try:
            outcome = analyze(settings, config, now, Window.last(args.window, now), progress)
        except KeyboardInterrupt:
            return 130
        firing = 0 if outcome.alerts is None else int((outcome.alerts["state"] == "firing").sum())
        print(f"{now:%Y-%m-%d %H:%M:%S} analyze: {len(outcome.results)} jobs in {sum(outcome.seconds.values()):.1f}s, "
              f"{len(outcome.failures)} failed, {firing} alerts firing, "
              f"{len(outcome.transitions)} changed; catalog {outcome.catalog}", flush=True)
        for name, error in outcome.failures.items():
            print(terminal_safe(f"  job {name} failed: {error}"), file=sys.stderr)
        if not args.every:
            return 1 if outcome.failures else 0
        elapsed = (dt.datetime.now(dt.timezone.utc) - now).total_seconds()
        try:
            if stop.wait(max(0.0, args.every - elapsed)):  # --every is the period, not the pause
                return 0
        except KeyboardInterrupt:
            return 0


def cmd_report(args: argparse.Namespace) -> int:
    import datetime as dt

    from spanlake.analytics import Window, build_report, load_config, render_json, render_text
    from spanlake.collector.storage.reader import open_snapshot
    from spanlake.ui.formatting import terminal_safe

    settings = _settings(args)
    now = dt.datetime.fromisoformat(args.now) if args.now else dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    with open_snapshot(settings.lake_dir) as snap:
        report = build_report(snap, load_config(settings.extra), now, Window.last(args.window, now),
                              settings.lake_dir)
    print(terminal_safe(render_json(report) if args.json else render_text(report)))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from spanlake.collector.status import lake_status, render_status
    from spanlake.ui.formatting import terminal_safe

    settings = _settings(args)
    print(terminal_safe(render_status(lake_status(settings))))
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from spanlake.collector.storage.reader import open_snapshot
    from spanlake.ui.formatting import format_table, terminal_safe

    settings = _settings(args)
    with open_snapshot(settings.lake_dir) as snap:
        try:
            result = snap.sql(args.query)
        except Exception as exc:  # CLI boundary: show the SQL error, exit non-zero
            print(terminal_safe(f"error: {exc}"), file=sys.stderr)  # errors may quote lake values
            return 1
    print(terminal_safe(format_table(result, args.format)))
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    import datetime as dt

    from spanlake.collector.storage.lake_writer import LakeMaintainer, ensure_tables

    settings = _settings(args, retention_days=args.retention_days)
    _setup_logging(settings.log_level)
    ensure_tables(settings.lake_dir)
    maintainer = LakeMaintainer(settings.lake_dir, settings.vacuum_grace_s, settings.retention_days)
    done = maintainer.run(dt.datetime.now(dt.timezone.utc).date())
    print(f"compacted away {done['compacted']} files, vacuumed {done['vacuumed']}, "
          f"expired {done['expired_partitions']} partition files")
    return 0


def cmd_reprice(args: argparse.Namespace) -> int:
    import datetime as dt

    from spanlake.collector.reprice import reprice

    try:
        since = dt.date.fromisoformat(args.since)
    except ValueError:
        print(f"error: --since wants a date like 2026-11-01, got {args.since!r}", file=sys.stderr)
        return 2
    settings = _settings(args)
    _setup_logging(settings.log_level)
    result = reprice(settings.lake_dir, since, settings.max_call_cost_usd)
    print(f"repriced {result.repriced} of {result.rows_read} spans since {since.isoformat()}; "
          f"{result.unpriced} with a model genai-prices does not know (cost left NULL)")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    return run_erase(_settings(args), args)
def cmd_quarantine(args: argparse.Namespace) -> int:
    """List, show or retry WAL records the lake writer set aside (see spanlake.collector.quarantine)."""
    import json

    from spanlake.collector.quarantine import STATUS_QUARANTINED, Quarantine, describe, payload_text, resend
    from spanlake.collector.server import read_ready_file
    from spanlake.ui.formatting import terminal_safe

    settings = _settings(args)
    quarantine = Quarantine(settings.quarantine_dir)
    if args.action == "list":
        entries = quarantine.entries()
        if args.json:
            print(json.dumps([describe(e) for e in entries], indent=1))
            return 0
        print(f"{len(entries)} record(s) in {settings.quarantine_dir}")
        for e in entries:
            print(terminal_safe(f"{e.id:>24s}  {e.signal:7s}  {e.status:11s}  {e.quarantined_at}  "
                                f"{e.payload_bytes:>9,d} B  {e.error[:100]}"))
        return 0
    ids = [e.id for e in quarantine.entries() if e.status == STATUS_QUARANTINED] if args.all else args.ids
    try:
        entries = [quarantine.get(i) for i in ids]
    except (KeyError, ValueError) as exc:
        print(f"error: no quarantined record {exc}", file=sys.stderr)
        return 1
    if args.action == "show":
        for e in entries:
            print(json.dumps(describe(e), indent=1))
            print(terminal_safe(payload_text(e.signal, quarantine.payload(e))))  # span text may hold ESC
        return 0
    info = read_ready_file(settings.data_dir)
    if info is None:
        print("error: retry re-sends records through the running collector; start `spanlake collector` first",
              file=sys.stderr)
        return 1
    failed = 0
    for e in entries:
        status, answer = resend(quarantine.payload(e), e.signal, info["host"], info["http_port"], settings.auth_token)
        if status == 200:
            quarantine.mark_retried(e, answer)
            print(f"{e.id}: re-sent ({answer})")
        else:
            failed += 1
            print(f"{e.id}: collector answered {status}: {answer}", file=sys.stderr)
    return 1 if failed else 0


UI_APP = Path(__file__).with_name("streamlit_app.py")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def ui_settings() -> Any:
    """The settings the Streamlit app runs with: ``SPANLAKE_*`` (set by ``spanlake ui``) > config file > defaults."""
    from spanlake.collector.settings import load_settings

    return load_settings({}, os.environ, None)


def ui_command(app: Path, host: str, port: int) -> list[str]:
    """The ``streamlit run`` command line: headless, no telemetry, no file watcher, no dev menu."""
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", host, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--client.toolbarMode", "viewer", "--theme.base", "light"]


def exposure_warning(host: str, password: str | None) -> str | None:
    """A warning when the UI would be reachable from other machines without a password."""
    if host in LOOPBACK or password:
        return None
    return f"warning: the UI is reachable beyond this machine ({host}) without a password; set SPANLAKE_UI_PASSWORD"


def cmd_ui(args: argparse.Namespace) -> int:
    """Replace this process with ``streamlit run`` over the app; the app reads the lake location from env."""
    settings = _settings(args)
    host, port = args.host or "127.0.0.1", args.port if args.port is not None else 8501
    warning = exposure_warning(host, settings.ui_password)
    if warning:
        print(warning, file=sys.stderr)
    env = {**os.environ, "SPANLAKE_DATA_DIR": str(settings.data_dir.resolve())}
    if args.config is not None:
        env["SPANLAKE_CONFIG"] = str(args.config.resolve())
    print(f"spanlake ui: http://{host}:{port}  data {settings.data_dir}", flush=True)
    command = ui_command(UI_APP, host, port)
    os.execve(command[0], command, env)
    return 0  # not reached: execve replaces the process


def cmd_fake_llm(args: argparse.Namespace) -> int:
    from spanlake.instrumentation.fake_llm import main as fake_main

    return int(fake_main(args.rest) or 0)


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole stack with a story-telling sample app (see spanlake.ui.demo)."""
    from spanlake.ui.demo.stack import DemoOptions, run_demo

    settings = _settings(args)
    ui = build_parser()._subparsers._group_actions[0].choices.get("ui")  # type: ignore[union-attr]
    options = DemoOptions(
        data_dir=settings.data_dir, config=args.config, seed=args.seed, speed=args.speed, rate=args.rate,
        backfill_hours=args.backfill_hours, latency_scale=args.latency_scale, grpc_port=args.grpc_port,
        http_port=args.http_port, llm_port=args.llm_port, ui_port=args.ui_port, analyze_every=args.analyze_every,
        duration=args.duration, ui=ui is not None and not args.no_ui,
        ui_accepts_config=ui is not None and "--config" in ui._option_string_actions)
    if args.speed <= 0 or args.rate <= 0 or args.backfill_hours < 0:
        print("error: --speed and --rate must be positive, --backfill-hours not negative", file=sys.stderr)
        return 2
    return run_demo(options)


def _data_dir_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default ./spanlake-data)")
    p.add_argument("--config", type=Path, default=None, help="config file (default ./spanlake.toml)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spanlake", description="OpenTelemetry-native LLM observability")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("collector", help="run the OTLP collector (gRPC + HTTP) writing the lake")
    _data_dir_flag(p)
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--grpc-port", type=int, default=None, help="OTLP/gRPC port (default 4317)")
    p.add_argument("--http-port", type=int, default=None, help="OTLP/HTTP port (default 4318)")
    p.add_argument("--retention-days", type=int, default=None, help="drop partitions older than this")
    p.add_argument("--auth-token", default=None, help="require this bearer token")
    p.set_defaults(func=cmd_collector)

    p = sub.add_parser("status", help="what the lake holds and whether a collector is running")
    _data_dir_flag(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("sql", help="run SQL over the lake (tables spans, logs, metric_points)")
    _data_dir_flag(p)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("query")
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("compact", help="compact, vacuum and apply retention now")
    _data_dir_flag(p)
    p.add_argument("--retention-days", type=int, default=None)
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser("reprice", help="recompute stored LLM costs with the current genai-prices data")
    _data_dir_flag(p)
    p.add_argument("--since", required=True, help="first UTC day to reprice (YYYY-MM-DD)")
    p.set_defaults(func=cmd_reprice)

    p = add_erase_parser(sub)
    _data_dir_flag(p)
    p.set_defaults(func=cmd_erase)
    p = sub.add_parser("quarantine", help="WAL records the lake writer could not convert: list, show, retry")
    actions = p.add_subparsers(dest="action", required=True)
    q = actions.add_parser("list", help="every record set aside, with its error and status")
    _data_dir_flag(q)
    q.add_argument("--json", action="store_true", help="JSON instead of a table")
    for name, text in (("show", "a record's details and its payload as OTLP/JSON"),
                       ("retry", "re-send records to the running collector (kept, marked retried; a record that "
                                 "fails again is quarantined anew)")):
        q = actions.add_parser(name, help=text)
        _data_dir_flag(q)
        q.add_argument("ids", nargs="*", metavar="ID", help="record id as shown by `spanlake quarantine list`")
        q.add_argument("--all", action="store_true", help="every record not yet retried")
    p.set_defaults(func=cmd_quarantine)

    p = sub.add_parser("analyze", help="run every analytic, write result tables, alerts and spanlake.duckdb")
    _data_dir_flag(p)
    p.add_argument("--every", type=float, default=None, metavar="SECONDS", help="repeat every N seconds")
    p.add_argument("--window", default="24h", help="window the findings cover (default 24h)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("report", help="print the findings for a window as tables (or --json)")
    _data_dir_flag(p)
    p.add_argument("--window", default="24h", help="how far back from now (default 24h; e.g. 1h, 7d)")
    p.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    p.add_argument("--now", default=None, metavar="ISO-TIME",
                   help="report as of this UTC time instead of now (e.g. 2026-11-23T12:00; reproduces a past report)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("ui", help="open the Streamlit viewer over the lake")
    _data_dir_flag(p)
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="HTTP port (default 8501)")
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("demo", help="collector, fake LLM, a sample app telling a story, analytics and the UI")
    _data_dir_flag(p)
    p.add_argument("--seed", type=int, default=7, help="seed of the story (same seed, same traffic)")
    p.add_argument("--speed", type=float, default=1.0, help="story seconds per real second of live traffic")
    p.add_argument("--rate", type=float, default=360.0, help="visits per story hour (default 360)")
    p.add_argument("--backfill-hours", type=float, default=48.0, help="history written on first start (default 48)")
    p.add_argument("--latency-scale", type=float, default=1.0, help="scale the fake LLM's latencies")
    p.add_argument("--grpc-port", type=int, default=4317, help="collector OTLP/gRPC port")
    p.add_argument("--http-port", type=int, default=4318, help="collector OTLP/HTTP port")
    p.add_argument("--llm-port", type=int, default=8765, help="fake LLM port")
    p.add_argument("--ui-port", type=int, default=8501, help="UI port")
    p.add_argument("--analyze-every", type=float, default=30.0, metavar="SECONDS", help="analytics period")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after this long")
    p.add_argument("--no-ui", action="store_true", help="do not start the UI")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("fake-llm", help="local OpenAI/Anthropic-compatible server", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_fake_llm)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["fake-llm"]:
        # fake-llm owns its flags; argparse's REMAINDER would refuse a leading --option.
        return cmd_fake_llm(argparse.Namespace(rest=argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ValueError as exc:  # invalid settings
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
