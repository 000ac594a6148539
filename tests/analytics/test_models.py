"""Silent model updates and unpinned aliases."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from span_factory import NOW, spans, write_lake
from spanlake.analytics.models import is_pinned, model_changes, unpinned_models
from spanlake.analytics.window import Window
from spanlake.instrumentation import semconv as sc


@pytest.mark.parametrize("model, pinned", [
    ("gpt-4o", False), ("gpt-4o-2024-08-06", True), ("claude-3-5-sonnet-20241022", True),
    ("claude-sonnet-4-5", False), ("gpt-4-0613", True), ("gemini-1.5-pro-002", True),
    ("anthropic.claude-3-sonnet-20240229-v1:0", True), ("claude-3-5-sonnet-latest", False),
    ("gemini-2.0-flash", False), ("text-embedding-3-small", False), ("mistral-large-2407", True),
])
def test_is_pinned(model, pinned):
    assert is_pinned(model) is pinned


def test_response_model_and_fingerprint_changes(lake_dir, snapshot):
    switch = NOW - dt.timedelta(days=2, hours=3)
    before = spans(30, switch - dt.timedelta(days=1), seed=1, request_model="gpt-4o",
                   response_model="gpt-4o-2024-08-06",
                   attributes=[[(sc.GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT, "fp_a")]] * 30)
    after = spans(30, switch, seed=2, request_model="gpt-4o", response_model="gpt-4o-2024-11-20",
                  attributes=[[(sc.GEN_AI_OPENAI_RESPONSE_SYSTEM_FINGERPRINT, "fp_b")]] * 30)
    stray = spans(2, switch, seed=3, request_model="gpt-4o", response_model="gpt-4o-mini")  # < min_calls
    pinned = spans(30, switch, seed=4, request_model="claude-3-5-sonnet-20241022",
                   response_model="claude-3-5-sonnet-20241022", provider="anthropic")
    write_lake(lake_dir, [pa.concat_tables([before, after, stray, pinned])])
    snap = snapshot()
    week = Window.last("7d", NOW)
    events = model_changes(snap, week)
    assert len(events) == 2
    resp = events[events.field == "response_model"].iloc[0]
    assert (resp.old_value, resp.new_value) == ("gpt-4o-2024-08-06", "gpt-4o-2024-11-20")
    assert resp.changed_at == switch
    assert set(events[events.field == "fingerprint"].new_value) == {"fp_b"}
    warnings = unpinned_models(snap, week)
    assert list(warnings.request_model) == ["gpt-4o"] and warnings.iloc[0].calls == 62
    assert "gpt-4o-2024-11-20" in warnings.iloc[0].resolved_to


def test_unpinned_models_when_no_span_has_a_response_model(lake_dir, snapshot):
    """A model whose spans all lack gen_ai.response.model (failed calls, or SDKs that never record it) is still
    listed, with nothing it resolved to, instead of failing the whole job (collect() of only nulls is NULL)."""
    unanswered = spans(4, NOW - dt.timedelta(hours=2), seed=5, request_model="gpt-4o", response_model=None)
    mixed = spans(3, NOW - dt.timedelta(hours=1), seed=6, request_model="claude-sonnet-4-5",
                  response_model=["claude-sonnet-4-5-20250929", None, None], provider="anthropic")
    pinned = spans(2, NOW - dt.timedelta(hours=1), seed=7, request_model="gpt-4o-2024-08-06", response_model=None)
    write_lake(lake_dir, [pa.concat_tables([unanswered, mixed, pinned])])
    warnings = unpinned_models(snapshot(), Window.last("7d", NOW))
    assert list(warnings.request_model) == ["gpt-4o", "claude-sonnet-4-5"]
    assert list(warnings.calls) == [4, 3]
    assert list(warnings.resolved_to) == ["", "claude-sonnet-4-5-20250929"]
    assert list(warnings.services) == ["app", "app"]
