"""`spanlake fake-llm`: a local OpenAI- and Anthropic-compatible server for demos, tests and benchmarks.

OpenAI routes under /v1 (chat completions, responses, embeddings, models) and Anthropic's /v1/messages,
with deterministic replies (JSON for a `json_schema` / `json_object` output format, so `parse` works),
real SSE streaming, cached/reasoning token usage and error injection by model name (`fail-429`,
`fail-500`, `fail-timeout`, `fail-midstream`) or the `x-fake-llm-fail` header, and silent model swaps
(`--swap`: same request model, different response model and fingerprint) for demos.
`build_reply` is exported so synthetic history (the demo's backfill) answers exactly as the server would.
"""

from __future__ import annotations

from ._catalog import Swap, fingerprint_of, parse_swap
from ._cli import main
from ._replies import Reply, build_reply
from ._server import (
    FAIL_HEADER,
    TOKEN_DELAY_HEADER,
    TOKENS_HEADER,
    TTFT_HEADER,
    FakeLLMConfig,
    FakeLLMServer,
    serve,
)

__all__ = [
    "FAIL_HEADER",
    "TOKENS_HEADER",
    "TOKEN_DELAY_HEADER",
    "TTFT_HEADER",
    "FakeLLMConfig",
    "FakeLLMServer",
    "Reply",
    "Swap",
    "build_reply",
    "fingerprint_of",
    "main",
    "parse_swap",
    "serve",
]
