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
    collector = Collector(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    collector.start()
    print(f"spanlake collector: OTLP/gRPC {settings.host}:{collector.grpc.port}  "
          f"OTLP/HTTP http://{settings.host}:{collector.http.port}  data {settings.data_dir}", flush=True)
    wait_forever(collector, stop)
    collector.stop()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from spanlake.collector.status import lake_status, render_status

    settings = _settings(args)
    print(render_status(lake_status(settings)))
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    from spanlake.collector.storage.reader import open_snapshot
    from spanlake.ui.formatting import format_table

    settings = _settings(args)
    with open_snapshot(settings.lake_dir) as snap:
        try:
            result = snap.sql(args.query)
        except Exception as exc:  # CLI boundary: show the SQL error, exit non-zero
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(format_table(result, args.format))
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


def cmd_fake_llm(args: argparse.Namespace) -> int:
    from spanlake.instrumentation.fake_llm import main as fake_main

    return int(fake_main(args.rest) or 0)


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

    p = sub.add_parser("fake-llm", help="local OpenAI/Anthropic-compatible server", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_fake_llm)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ValueError as exc:  # invalid settings
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
