"""Failure patterns: messages from a few templates with random ids collapse to one pattern each."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from span_factory import NOW, spans, write_lake
from spanlake.analytics.patterns import failure_patterns, template
from spanlake.analytics.window import Window


def test_template_masks_variables():
    a = template("Rate limit reached for gpt-4o in organization org-abc123 on tokens per min: Limit 30000, "
                 "Used 29000. Please try again in 2.5s.")
    b = template("Rate limit reached for gpt-4o in organization org-zz9 on tokens per min: Limit 30000, "
                 "Used 12. Please try again in 20s.")
    assert a == b


def test_patterns_group_templates(lake_dir, snapshot):
    rng = np.random.default_rng(0)
    messages, types = [], []
    for i in range(60):
        unit = ("requests", "tokens per min (TPM)", "requests per day (RPD)")[i % 3]  # distinct templates
        messages.append(f"Rate limit reached for {unit} in org-{rng.integers(1e6)}. Try again in {i % 9}s.")
        types.append("RateLimitError")
    for i in range(25):
        messages.append(f"Request timed out after {rng.integers(30, 90)} seconds (request req_{rng.integers(1e9)})")
        types.append("APITimeoutError")
    for i in range(10):
        messages.append(f"Error code: 500 - The server had an error processing request {rng.integers(1e9):x}"
                        f"{rng.integers(1e9):x}")
        types.append("InternalServerError")
    n = len(messages)
    table = spans(n, NOW - dt.timedelta(hours=3), status_code="ERROR", status_message=messages, error_type=types)
    write_lake(lake_dir, [table])
    frame = failure_patterns(snapshot(), Window.last("24h", NOW))
    assert list(frame["count"]) == [60, 25, 10]
    assert frame.iloc[0].error_types == "RateLimitError" and "rate" in frame.iloc[0].top_terms
    assert frame["share"].sum() == pytest.approx(1.0)
