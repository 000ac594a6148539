"""The fake server's model catalog and deterministic reply generator.

A reply is a seeded function of (model, prompt) so that output length varies per model and prompt but
never between runs; token counts are word counts, which keeps usage arithmetic easy to assert.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

_VOCABULARY: tuple[str, ...] = (
    "the",
    "ticket",
    "customer",
    "reports",
    "that",
    "checkout",
    "fails",
    "after",
    "payment",
    "is",
    "accepted",
    "and",
    "a",
    "retry",
    "succeeds",
    "we",
    "should",
    "summarise",
    "issue",
    "for",
    "support",
    "team",
    "with",
    "next",
    "steps",
    "including",
    "refund",
    "order",
    "status",
    "update",
    "email",
    "confirmation",
    "delay",
    "root",
    "cause",
    "looks",
    "like",
    "timeout",
    "in",
    "gateway",
    "service",
    "latency",
    "spike",
    "resolved",
    "monitoring",
    "shows",
    "normal",
    "traffic",
    "again",
    "today",
)


@dataclass(frozen=True)
class ModelInfo:
    """One model the fake server knows: the dated version it answers with and how verbose it is."""

    alias: str
    version: str
    provider: str  # "openai" or "anthropic"
    min_words: int = 6
    max_words: int = 40
    reasoning: bool = False
    embedding_dims: int = 0


MODELS: dict[str, ModelInfo] = {
    m.alias: m
    for m in (
        ModelInfo("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai", 6, 30),
        ModelInfo("gpt-4o", "gpt-4o-2024-08-06", "openai", 10, 50),
        ModelInfo("gpt-4.1", "gpt-4.1-2025-04-14", "openai", 12, 60),
        ModelInfo("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", "openai", 8, 35),
        ModelInfo("o3-mini", "o3-mini-2025-01-31", "openai", 6, 25, reasoning=True),
        ModelInfo("o4-mini", "o4-mini-2025-04-16", "openai", 6, 25, reasoning=True),
        ModelInfo("text-embedding-3-small", "text-embedding-3-small", "openai", embedding_dims=1536),
        ModelInfo("text-embedding-3-large", "text-embedding-3-large", "openai", embedding_dims=3072),
        ModelInfo("claude-haiku-4-5", "claude-haiku-4-5-20251001", "anthropic", 6, 30),
        ModelInfo("claude-opus-4-5", "claude-opus-4-5-20251101", "anthropic", 12, 60),
        ModelInfo("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "anthropic", 10, 50),
    )
}

DEFAULT_FINGERPRINT = "fp_spanlake_fake"
"""`system_fingerprint` of every OpenAI answer that no swap has changed."""


@dataclass(frozen=True)
class Swap:
    """A silent provider-side model swap: requests for `request_model` (alias or dated version) are
    answered by `response_model`, with a new system fingerprint and `verbosity` times as many output
    tokens, once the server has run `after_s` seconds. The client asked for nothing different."""

    request_model: str
    response_model: str
    after_s: float = 0.0
    verbosity: float = 1.0

    def applies_to(self, model: str, info: ModelInfo) -> bool:
        return model == self.request_model or self.request_model in (info.alias, info.version)


def parse_swap(spec: str) -> Swap:
    """`REQUEST=RESPONSE[*VERBOSITY][@AFTER_S]`, e.g. `gpt-4o-2024-08-06=gpt-4o-2024-11-20*1.4@60`."""
    request, sep, rest = spec.partition("=")
    rest, _, after = rest.partition("@")
    response, _, verbosity = rest.partition("*")
    if not sep or not request.strip() or not response.strip():
        raise ValueError(f"swap wants REQUEST=RESPONSE[*VERBOSITY][@AFTER_S], got {spec!r}")
    return Swap(request.strip(), response.strip(), float(after or 0.0), float(verbosity or 1.0))


def fingerprint_of(version: str) -> str:
    """A stable OpenAI-style `fp_…` fingerprint for a swapped-in model version."""
    return "fp_" + hashlib.sha256(version.encode()).hexdigest()[:10]


FAILURE_MODELS: dict[str, str] = {
    "fail-429": "429",
    "fail-500": "500",
    "fail-timeout": "timeout",
    "fail-midstream": "midstream",
}


def lookup(model: str, provider: str) -> ModelInfo:
    """The catalog entry for `model`; unknown names (and dated versions) answer as themselves."""
    if model in MODELS:
        return MODELS[model]
    for info in MODELS.values():
        if info.version == model:
            return info
    return ModelInfo(model, model, provider)


def seed_of(*parts: str) -> int:
    """A stable 64-bit seed from text (Python's hash() is salted per process, so not usable)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def reply_words(
    info: ModelInfo, prompt: str, *, forced: int | None = None, verbosity: float = 1.0
) -> list[str]:
    """The words of the deterministic reply to `prompt` from the model `info` (`verbosity` scales the count)."""
    rng = random.Random(seed_of(info.version, prompt))
    count = forced if forced is not None else rng.randint(info.min_words, info.max_words)
    count = max(1, round(count * verbosity)) if verbosity != 1.0 else count
    return [rng.choice(_VOCABULARY) for _ in range(count)]


def token_pieces(words: list[str]) -> list[str]:
    """Words as streamed token texts: the first bare, the others with a leading space."""
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def count_tokens(text: str) -> int:
    """The fake tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def cached_tokens(input_tokens: int) -> int:
    """Deterministic prompt-cache hits: a third of the prompt, once the prompt is long enough."""
    return input_tokens // 3 if input_tokens >= 6 else 0


def reasoning_tokens(info: ModelInfo, output_tokens: int) -> int:
    """Hidden reasoning tokens an o-series model spends; zero for others."""
    return output_tokens * 2 if info.reasoning else 0


def embedding(text: str, dims: int) -> list[float]:
    """A deterministic pseudo-embedding of `text`, values in [-1, 1)."""
    rng = random.Random(seed_of("embed", text))
    return [round(rng.uniform(-1.0, 1.0), 6) for _ in range(dims)]
