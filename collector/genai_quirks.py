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


def openllmetry_anthropic_0_62(batch: SpanBatch) -> np.ndarray:
    """Rows from OpenLLMetry's Anthropic instrumentation up to 0.62 (whose quirks are fixed below)."""
    affected = {(s, v) for s, v in set(zip(batch.scope_names, batch.scope_versions))
                if s and s.endswith(sc.GEN_AI_PROVIDER_ANTHROPIC) and version_at_most(v, (0, 62))}
    if not affected:
        return np.zeros(len(batch.scope_names), bool)
    return np.array([(s, v) in affected for s, v in zip(batch.scope_names, batch.scope_versions)], bool)


def off_by_one_stream(batch: SpanBatch, get: Any, out: pa.Array) -> np.ndarray:
    """Rows where OpenLLMetry <= 0.62 added message_start's output_tokens (1) to Anthropic's cumulative count."""
    return openllmetry_anthropic_0_62(batch) & is_true(get("is_stream")) & is_true(pc.greater(out, 0))


def events_mode_streams(batch: SpanBatch, get: Any, mask: np.ndarray) -> np.ndarray:
    """OpenLLMetry <= 0.62 Anthropic spans in events mode that were streamed: that mode sets no request
    attributes (no model, no gen_ai.is_streaming) and no response attributes on non-streamed calls, but its
    stream wrapper always sets gen_ai.response.id (streaming.py _handle_completion). So a response id with
    no request model marks a stream (fixtures otel-anthropic-events, traceloop-events)."""
    candidates = mask & ~valid(get("is_stream")) & ~valid(get("request_model")) & valid(get("response_id"))
    return candidates & openllmetry_anthropic_0_62(batch) if candidates.any() else candidates
