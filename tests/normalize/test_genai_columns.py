"""Every capture replayed through the real collector: the typed GenAI columns of every span, exactly.

``expected_replays.json`` holds, per capture, the non-NULL typed columns of each span that has any
(keyed by the span id as captured) and the stored content rows. It was reviewed concept by concept
against ../shared/research/genai-attribute-map.md and tests/fixtures/README.md; a column that
becomes non-NULL where the emitter sent nothing fails the test as surely as a wrong value.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from replays import CAPTURES, Lakes, rows

EXPECTED = json.loads((Path(__file__).parent / "expected_replays.json").read_text())
TYPED = ("service_name", "environment", "emitter", "operation", "provider", "request_model", "response_model",
         "response_id", "input_tokens", "output_tokens", "total_tokens", "cached_input_tokens",
         "cache_write_tokens", "reasoning_tokens", "ttft_s", "ttft_source", "is_stream", "finish_reasons",
         "request_params", "user_id", "session_id", "feature", "tags", "prompt_name", "prompt_version",
         "prompt_template", "error_type", "http_status", "output_chars", "cost_usd", "cost_source",
         "price_version", "duplicate_of")
_ALWAYS = ("service_name", "environment")


def stored_spans(data_dir: Path) -> dict[str, dict[str, Any]]:
    """span_id → the non-NULL typed columns of each span that has any beyond its resource identity."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows(data_dir, f"select span_id, name, {', '.join(TYPED)} from spans"):
        for key in ("request_params", "tags"):
            if row[key] is not None:
                row[key] = dict(row[key])
        values = {k: v for k, v in row.items() if v is not None and k != "span_id"}
        if set(values) - {"name", *_ALWAYS}:
            out[row["span_id"]] = values
    return out


def stored_content(data_dir: Path) -> dict[str, dict[str, Any]]:
    found = rows(data_dir, "select span_id, source, input_messages, output_messages, system_instructions, "
                           "truncated from span_content")
    return {r.pop("span_id"): {k: (json.loads(v) if k.endswith(("messages", "instructions")) and v else v)
                               for k, v in r.items()} for r in found}


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-12)
    return bool(actual == expected)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("capture", sorted(CAPTURES))
def test_typed_columns_of_every_span(lakes: Lakes, capture: str, protocol: str) -> None:
    actual = stored_spans(lakes.get(capture, protocol))
    expected = EXPECTED[capture]["spans"]
    assert sorted(actual) == sorted(expected)
    for span_id, columns in expected.items():
        got = actual[span_id]
        assert sorted(got) == sorted(columns), (span_id, columns.get("name"))
        wrong = {k: (got[k], v) for k, v in columns.items() if not _same(got[k], v)}
        assert not wrong, (span_id, columns.get("name"), wrong)


@pytest.mark.parametrize("capture", sorted(CAPTURES))
def test_content_rows(lakes: Lakes, capture: str) -> None:
    assert stored_content(lakes.get(capture, "grpc")) == EXPECTED[capture]["content"]
