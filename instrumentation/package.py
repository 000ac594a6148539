"""The client library versions spanlake instruments: the one place the supported ranges are stated."""

from __future__ import annotations

from typing import Final

OPENAI_REQUIREMENT: Final = "openai >= 1.40.0, < 4"
"""Chat completions and Responses API (+ their `.stream()` and `.parse()` helpers) and embeddings; sync and
async. The helpers are wrapped where the installed version has them."""

ANTHROPIC_REQUIREMENT: Final = "anthropic >= 0.40.0, < 3"
"""Messages (+ `.stream()` and `.parse()` helpers); sync and async. Native SDK tracing (>= 2.x) is handled, see
anthropic_wrappers."""

SUPPORTED: Final[dict[str, str]] = {"openai": OPENAI_REQUIREMENT, "anthropic": ANTHROPIC_REQUIREMENT}

_instruments: Final[tuple[str, ...]] = ()
"""Nothing is required: each library is instrumented only when an installed version is supported."""
