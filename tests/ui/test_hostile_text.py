"""Nothing that came from a span renders as markup: names, content, model names and alert evidence carrying
markdown images (remote beacons), links, HTML and colour directives are shown as text in the viewer.

Each markdown-bearing element the pages produce is rendered with a CommonMark parser (markdown-it, raw
HTML allowed, so nothing is hidden by its defaults): no <img>, <a> or injected tag may come out of it.
And the real thing: `spanlake ui` in headless Chromium, whose DOM must hold the hostile strings as text and
no image, link or bold element made of them. Time budget: about 45 s (AppTest of three pages, one browser).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import streamlit as st
from browser import Browser, serve_ui
from harness import REPO, free_port
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analytics"))
from span_factory import spans, write_lake  # noqa: E402
from spanlake.analytics.alerts import Alert, update_alerts  # noqa: E402
from spanlake.collector.storage import schema  # noqa: E402
from spanlake.collector.storage.lake_writer import LakeWriter  # noqa: E402
from spanlake.ui.components import plain  # noqa: E402

APP = REPO / "ui" / "streamlit_app.py"
TRACE = "6b1d9a7c0e2f4a3b8c5d7e9f01234567"
BEACON = "![x](http://evil/beacon.png)"
BOLD = "<b>x</b>"
MODEL = "gpt-4o :red[hacked] [docs](http://evil/phish)"
CONTENT = f"look {BEACON} and {BOLD} and [click](http://evil/c) **now**"
ALERT_TITLE = f"errors on {BEACON}"
EVIDENCE = f"5 of 9 calls to <img src=http://evil/e.png> {MODEL}"
MARKDOWN = MarkdownIt("commonmark", {"html": True})


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake whose one trace, its conversation and one firing alert are full of markup."""
    data_dir = tmp_path_factory.mktemp("hostile") / "data"
    lake = data_dir / "lake"
    start = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).replace(microsecond=0)
    ids = ["a1a1a1a1a1a1a1a1", "b2b2b2b2b2b2b2b2"]
    write_lake(lake, [spans(2, [start, start + dt.timedelta(milliseconds=10)], trace_id=[TRACE] * 2, span_id=ids,
                            parent_span_id=[None, ids[0]], name=[BEACON, BOLD], kind=["SERVER", "CLIENT"],
                            request_model=[None, MODEL], response_model=[None, MODEL], feature=[None, BOLD],
                            status_code=["UNSET", "ERROR"], status_message=[None, BEACON])])
    message = [{"role": "user", "parts": [{"type": "text", "content": CONTENT}]}]
    target = schema.arrow_schema(schema.SPAN_CONTENT)
    row = {"trace_id": TRACE, "span_id": ids[1], "time": start, "service_name": "app",
           "input_messages": json.dumps(message), "output_messages": json.dumps([{"role": "assistant", "parts": [
               {"type": "text", "content": BEACON}], "finish_reason": "stop"}]), "system_instructions": None,
           "source": "span", "truncated": False, "dt": start.date()}
    LakeWriter(lake).append(schema.SPAN_CONTENT, pa.Table.from_pylist([{f.name: row.get(f.name) for f in target}],
                                                                      schema=target), 10)
    update_alerts(lake, [Alert("errors:x", "outage", "critical", ALERT_TITLE, EVIDENCE, f"pin {MODEL}",
                               f"feature {BOLD}", "errors")], dt.datetime.now(dt.timezone.utc))
    (data_dir / "spanlake.toml").write_text("")
    return data_dir


@pytest.fixture
def app(hostile_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("SPANLAKE_DATA_DIR", str(hostile_dir))
    monkeypatch.setenv("SPANLAKE_CONFIG", str(hostile_dir / "spanlake.toml"))
    monkeypatch.chdir(hostile_dir)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield AppTest.from_file(str(APP), default_timeout=60)
    st.cache_resource.clear()


def _render(app: AppTest, page: str) -> AppTest:
    app.run()
    app.switch_page(f"app_pages/{page}.py")
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _markdown_sources(app: AppTest) -> list[str]:
    """Every string the page hands to Streamlit's markdown renderer: bodies and labels."""
    bodies = [str(e.value) for kind in ("markdown", "caption", "success", "warning", "error", "info", "subheader",
                                        "title") for e in getattr(app, kind)]
    return bodies + [str(e.label) for e in app.expander]


def _assert_inert(sources: list[str]) -> None:
    for source in sources:
        html = MARKDOWN.render(source)
        assert "<img" not in html and "<a " not in html and "<b>" not in html, (source, html)
        assert ":red[hacked]" not in source, source  # a colour directive from a model name


def test_trace_names_and_conversation_render_as_text(app: AppTest) -> None:
    app.query_params["trace_id"] = TRACE
    _render(app, "traces")
    labels = [e.label for e in app.expander]
    assert len(labels) == 2
    assert plain(f" 1. {BEACON}".strip()) in labels[0] and plain(BOLD) in labels[1] and plain(MODEL) in labels[1]
    _assert_inert(_markdown_sources(app))
    said = [str(t.value) for chat in app.chat_message for t in chat.text]
    assert said == [CONTENT, BEACON], "what was said is shown verbatim, as text"
    assert not [m for chat in app.chat_message for m in chat.markdown if "evil" in str(m.value)]


def test_alert_evidence_renders_as_text(app: AppTest) -> None:
    _render(app, "alerts")
    sources = _markdown_sources(app)
    assert any(plain(ALERT_TITLE) in s for s in sources) and any(plain(EVIDENCE) in s for s in sources)
    _assert_inert(sources)


def test_overview_badge_of_a_hostile_alert_is_inert(app: AppTest) -> None:
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    sources = _markdown_sources(app)
    assert any(plain(ALERT_TITLE) in s for s in sources)
    _assert_inert(sources)


def test_plain_escapes_what_markdown_would_render() -> None:
    for hostile in (BEACON, BOLD, MODEL, "www.evil.com", "$x^2$", "`code`", "line\n# heading", "a_b_c *d*"):
        html = MARKDOWN.render(plain(hostile))
        assert not any(tag in html for tag in ("<img", "<a ", "<b>", "<h1>", "<em>", "<code>", "<strong>")), html
    assert MARKDOWN.render(plain(BEACON)).strip() == "<p>![x](http://evil/beacon.png)</p>"


# --- in a real browser ----------------------------------------------------------------------------------

DOM_JS = """JSON.stringify({
  text: document.body.innerText,
  images: [...document.querySelectorAll('img')].map(e => e.src).filter(s => s.includes('evil')),
  links: [...document.querySelectorAll('a')].map(e => e.href).filter(s => s.includes('evil')),
  bold: [...document.querySelectorAll('[data-testid="stMain"] b')].map(e => e.textContent),
})"""


@pytest.fixture(scope="module")
def ui_url(hostile_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`spanlake ui` over the hostile lake on a free loopback port."""
    log = tmp_path_factory.mktemp("hostile-ui") / "ui.log"
    with serve_ui(hostile_dir, hostile_dir / "spanlake.toml", free_port(), log) as url:
        yield url


def _dom(browser: Browser) -> dict[str, object]:
    result = browser.call("Runtime.evaluate", expression=DOM_JS, returnByValue=True)
    return dict(json.loads(result["result"]["value"]))


@pytest.mark.parametrize(("path", "expect", "shown"), [
    (f"traces?trace_id={TRACE}", CONTENT, [CONTENT, BEACON, MODEL]),
    ("alerts", "Firing (1)", [ALERT_TITLE, EVIDENCE]),
])
def test_hostile_text_in_chromium(ui_url: str, path: str, expect: str, shown: list[str]) -> None:
    browser = Browser(height=1600).start()
    try:
        state = browser.open(f"{ui_url}/{path}", expect)
        assert state.exceptions == [], state.exceptions[0]
        dom = _dom(browser)
    finally:
        browser.close()
    assert dom["images"] == [] and dom["links"] == [] and dom["bold"] == []
    text = str(dom["text"])
    assert [s for s in shown if s not in text] == [], "shown verbatim, as text"
