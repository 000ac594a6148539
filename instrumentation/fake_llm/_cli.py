"""Command line: `spanlake fake-llm [--host H] [--port N] [--ttft S] [--token-delay S]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._catalog import parse_swap
from ._server import FakeLLMServer, serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spanlake fake-llm", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one (default 8765)")
    parser.add_argument("--ttft", type=float, default=0.15, help="seconds before the first chunk")
    parser.add_argument("--token-delay", type=float, default=0.02, help="seconds between tokens")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After on 429s")
    parser.add_argument("--hang", type=float, default=30.0, help="seconds a fail-timeout request hangs")
    parser.add_argument("--fail-seed", type=int, default=0, help="seed of probabilistic failures")
    parser.add_argument(
        "--swap",
        action="append",
        default=[],
        type=parse_swap,
        metavar="REQ=RESP[*VERBOSITY][@AFTER_S]",
        help="silently answer requests for REQ with model RESP (new fingerprint, VERBOSITY x output) "
        "once the server has run AFTER_S seconds; repeatable",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server in the foreground until Ctrl-C; prints the URL it listens on."""
    args = _parser().parse_args(argv)
    server: FakeLLMServer = serve(
        args.host,
        args.port,
        ttft_s=args.ttft,
        token_delay_s=args.token_delay,
        retry_after_s=args.retry_after,
        hang_s=args.hang,
        fail_seed=args.fail_seed,
        swaps=tuple(args.swap),
        background=True,
    )
    print(f"fake-llm listening on {server.url} (OpenAI base_url {server.url}/v1)", flush=True)
    try:
        while server._thread is not None and server._thread.is_alive():
            server._thread.join(timeout=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
