"""Every page of the viewer rendered by Streamlit's AppTest over the known lake: key numbers, key
elements, no exception."""

from __future__ import annotations

import re
from typing import Any

import pytest
from known_lake import (
    ANSWER,
    CHAT_CALLS,
    CHAT_COST,
    KNOWN_TRACE,
    QUESTION,
    RATE_LIMITED,
    SEARCH_CALLS,
    SEARCH_COST,
    KnownLake,
)
from streamlit.testing.v1 import AppTest

PAGES = ("overview", "traces", "latency", "cost", "quality", "prompts", "models", "alerts")


def render(app: AppTest, page: str) -> AppTest:
    """Run the app, switch to ``page`` and fail on any exception box."""
    app.run()
    if page != "overview":
        app.switch_page(f"app_pages/{page}.py")
        app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def metric(app: AppTest, label: str) -> str:
    found = [m.value for m in app.metric if m.label == label]
    assert found, f"no metric {label!r} among {[m.label for m in app.metric]}"
    return str(found[0])


def frame_with(app: AppTest, *columns: str) -> Any:
    """The first table on the page having all ``columns``."""
    found = [d.value for d in app.dataframe if set(columns) <= set(d.value.columns)]
    assert found, f"no table with {columns}"
    return found[0]


def unescaped(markdown: object) -> str:
    """Markdown source as read: span-derived text reaches it with its punctuation backslash-escaped."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", str(markdown))


def texts(app: AppTest) -> str:
    """All markdown-ish text of the page (alerts, badges, captions, chat messages), as read."""
    parts = [e.value for kind in ("markdown", "caption", "success", "warning", "error", "info", "subheader", "title")
             for e in getattr(app, kind)]
    return "\n".join(unescaped(p) for p in parts)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception(app: AppTest, page: str) -> None:
    render(app, page)
    assert app.title[0].value == page.capitalize()


def test_overview_shows_the_known_numbers(app: AppTest, known: KnownLake) -> None:
    render(app, "overview")
    assert metric(app, "Requests") == f"{known.requests_24h:,}"
    assert metric(app, "Error rate") == f"{(RATE_LIMITED + 1) / known.requests_24h:.1%}"
    assert metric(app, "Firing alerts") == "1"
    for label in ("Spend today", "Spend this month", "TTFT p50", "TTFT p99", "Duration p50", "Duration p99"):
        metric(app, label)
    budgets = app.dataframe[0].value
    assert set(budgets["budget"]) == {"all-daily", "chat-monthly"}
    assert "rate_limit at 5%" in texts(app)


def test_service_filter_narrows_every_number(app: AppTest) -> None:
    app.run()
    app.sidebar.multiselect(key="services").select("worker")
    app.run()
    assert not app.exception
    assert metric(app, "Requests") == "40"


def test_trace_list_filters_by_text_in_the_content(app: AppTest) -> None:
    render(app, "traces")
    assert len(app.dataframe[0].value) == 200
    app.text_input(key="f_text").input("capital of france")
    app.run()
    listed = app.dataframe[0].value
    assert list(listed["trace_id"]) == [KNOWN_TRACE]
    assert listed["llm_calls"].iloc[0] == 2 and listed["status"].iloc[0] == "error"


def test_trace_list_filters_by_feature_and_tag(app: AppTest) -> None:
    render(app, "traces")
    app.selectbox(key="f_feature").select("search")
    app.selectbox(key="f_tag").select("team")
    app.run()
    app.selectbox(key="f_tag:team").select("growth")
    app.run()
    listed = app.dataframe[0].value
    assert len(listed) == SEARCH_CALLS and set(listed["feature"]) == {"search"}


def test_deep_link_opens_the_trace_waterfall_and_conversation(app: AppTest) -> None:
    app.query_params["trace_id"] = KNOWN_TRACE
    render(app, "traces")
    assert any(KNOWN_TRACE in s.value for s in app.subheader)
    assert metric(app, "Spans / LLM calls") == "3 / 2"
    assert metric(app, "Errors") == "1"
    charts = [e for e in app.main if getattr(e, "type", "") == "vega_lite_chart"]
    assert len(charts) == 1, "the waterfall"
    conversation = "\n".join(str(m.value) for chat in app.chat_message for m in chat.text)
    assert QUESTION in conversation and ANSWER in conversation
    assert [unescaped(e.label) for e in app.expander][:1] == ["1. POST /chat · 2,400 ms"]
    scores = app.dataframe[0].value
    assert list(scores["evaluation_name"]) == ["user_feedback"]


def test_latency_page_shows_slo_and_breakdowns(app: AppTest) -> None:
    render(app, "latency")
    assert "chat-p99" in texts(app) and "ok" in app.success[0].value
    by_model = app.dataframe[0].value
    assert by_model.set_index("request_model")["count"]["gpt-4o"] == CHAT_CALLS + 1
    assert len(app.tabs) == 3


def test_cost_page_breaks_down_by_feature_and_tag(app: AppTest) -> None:
    render(app, "cost")
    table = frame_with(app, "feature", "cost_per_request_mean").set_index("feature")
    assert table.loc["chat", "cost_usd"] == pytest.approx(CHAT_CALLS * CHAT_COST + 0.0042)
    assert table.loc["search", "cost_usd"] == pytest.approx(SEARCH_CALLS * SEARCH_COST)
    app.selectbox(key="cost_by").select("tag:team")
    app.run()
    assert not app.exception
    by_tag = frame_with(app, "tag:team", "cost_per_request_mean").set_index("tag:team")
    assert by_tag.loc["growth", "cost_usd"] == pytest.approx(SEARCH_CALLS * SEARCH_COST)


def test_quality_page_draws_both_distributions(app: AppTest) -> None:
    render(app, "quality")
    app.selectbox(key="drift_by").select("feature")
    app.run()
    drift = frame_with(app, "group", "psi").set_index("group")
    assert bool(drift.loc["feature=chat", "drift"]) is True
    charts = [e for e in app.main if getattr(e, "type", "") == "vega_lite_chart"]
    assert len(charts) == 1, "baseline and current distributions in one chart"


def test_quality_page_tabs_are_lazy_and_linkable(app: AppTest) -> None:
    app.query_params["section"] = "Errors and failure patterns"
    render(app, "quality")
    assert "Output length drift" not in texts(app)
    classes = frame_with(app, "error_class", "calls")
    assert classes.groupby("error_class")["count"].sum()["rate_limit"] == RATE_LIMITED + 1
    patterns = frame_with(app, "pattern", "example")
    assert "Rate limit reached" in patterns["example"].iloc[0]
    app.query_params["section"] = "Evaluations and feedback"
    app.run()
    assert not app.exception
    assert {"helpfulness", "user_feedback"} <= set(frame_with(app, "group", "rate_current")["group"].str.split("=").str[1])


def test_prompts_page_gives_a_verdict_with_reasons(app: AppTest) -> None:
    render(app, "prompts")
    assert "**answer**" in app.warning[0].value and "keep watching" in app.warning[0].value
    compared = app.dataframe[0].value.set_index("metric")
    assert compared.loc["output_tokens", "change"] == pytest.approx(1.0, abs=0.1)
    app.toggle(key="judge_all").set_value(True).run()
    assert not app.exception
    assert len(app.warning) == 2, "the live comparison and the all-prompts verdict"


def test_models_page_shows_the_silent_swap_and_unpinned_alias(app: AppTest) -> None:
    render(app, "models")
    assert "gpt-4o-2025-01-01" in unescaped(app.warning[0].value)
    unpinned = app.dataframe[0].value
    assert "gpt-4o" in set(unpinned["request_model"])


def test_alerts_page_shows_firing_and_resolved_with_playbooks(app: AppTest) -> None:
    render(app, "alerts")
    assert "rate_limit at 5%" in unescaped(app.error[0].value)
    assert "fail over to the fallback provider" in texts(app)
    assert unescaped(app.expander[0].label).startswith("✓ SLO old breached")


def test_auto_refresh_toggle_and_window_choice(app: AppTest) -> None:
    app.run()
    app.sidebar.toggle(key="auto_refresh").set_value(True).run()
    assert not app.exception
    app.sidebar.selectbox(key="window").select("1h").run()
    assert not app.exception
    assert app.query_params["window"] == "1h"
    assert int(metric(app, "Requests").replace(",", "")) < 40
