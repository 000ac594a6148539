"""Emitter bugs fixed at ingest, each read off the emitter's own code and pinned to the versions that
have it (tests/fixtures/README.md records the evidence)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from spanlake.collector.genai_batch import SpanBatch, is_true, valid
from spanlake.instrumentation import semconv as sc


def version_at_most(version: str | None, limit: tuple[int, int]) -> bool:
    """Is a scope version (``0.62.4``) at most ``limit`` in its first two numbers."""
    parts = re.findall(r"\d+", version or "")[:2]
    return len(parts) == 2 and (int(parts[0]), int(parts[1])) <= limit


def openllmetry_anthropic_0_62(batch: SpanBatch, mask: np.ndarray) -> np.ndarray:
    """Rows of ``mask`` (OpenLLMetry's) from its Anthropic instrumentation up to 0.62, whose quirks follow."""
    out = np.zeros(len(mask), bool)
    rows = np.flatnonzero(mask)
    pairs = {(batch.scope_names[r], batch.scope_versions[r]) for r in rows}
    affected = {(s, v) for s, v in pairs
                if s and s.endswith(sc.GEN_AI_PROVIDER_ANTHROPIC) and version_at_most(v, (0, 62))}
    if affected:
        out[rows] = [(batch.scope_names[r], batch.scope_versions[r]) in affected for r in rows]
    return out


def off_by_one_stream(get: Any, out: pa.Array, quirky: np.ndarray) -> np.ndarray:
    """Rows where OpenLLMetry <= 0.62 added message_start's output_tokens (1) to Anthropic's cumulative count."""
    return quirky & is_true(get("is_stream")) & is_true(pc.greater(out, 0))


def events_mode_streams(get: Any, quirky: np.ndarray) -> np.ndarray:
    """OpenLLMetry <= 0.62 Anthropic spans in events mode that were streamed: that mode sets no request
    attributes (no model, no gen_ai.is_streaming) and no response attributes on non-streamed calls, but its
    stream wrapper always sets gen_ai.response.id (streaming.py _handle_completion). So a response id with
    no request model marks a stream (fixtures otel-anthropic-events, traceloop-events)."""
    return quirky & ~valid(get("is_stream")) & ~valid(get("request_model")) & valid(get("response_id"))
