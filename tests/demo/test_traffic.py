"""The demo's traffic tells its story: a short backfill plus a few seconds of live traffic through a real
collector and fake LLM, then the lake is asked for each story element."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import CollectorProcess, count_when, query
from spanlake.instrumentation.fake_llm import FakeLLMServer, parse_swap, serve
from spanlake.ui.demo.backfill import backfill
from spanlake.ui.demo.story import SWAPPED_MODEL, Story, StoryConfig

ANCHOR = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
CONFIG = StoryConfig(seed=3, anchor=ANCHOR, backfill=dt.timedelta(minutes=40), visits_per_hour=3000,
                     latency_scale=0.02)
LIVE_SECONDS = 6


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Backfill 40 story minutes in-process, then 6 s of live traffic from the sample app's process."""
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    data_dir.mkdir()
    collector = CollectorProcess(data_dir, env={"SPANLAKE_FLUSH_INTERVAL_S": "0.2"}).start()
    story = Story(CONFIG)
    llm: FakeLLMServer = serve(port=0, ttft_s=0, token_delay_s=0, swaps=(parse_swap(story.swap_spec(ANCHOR, 1)),))
    try:
        host, port = llm.server_address[:2]
        result = backfill(story, story.visits(ANCHOR - CONFIG.backfill, ANCHOR), collector.http_url, host, port)
        assert result.visits > 1000
        # The live run's anchor lies one burst offset back, so a 429 burst opens its first story minutes:
        # whether live traffic sees a burst then depends neither on how long the backfill took nor on how
        # fast this machine replays visits (a loaded CI box replays fewer story minutes in LIVE_SECONDS).
        live_anchor = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - CONFIG.live_burst_offset
        live = subprocess.run(
            [sys.executable, "-m", "spanlake.ui.demo.traffic", "live", "--collector", collector.http_url,
             "--llm", llm.url, "--anchor", live_anchor.isoformat(), "--seed", "3", "--backfill-hours", f"{40 / 60}",
             "--rate", "3000", "--latency-scale", "0.02", "--speed", "120", "--duration", str(LIVE_SECONDS)],
            capture_output=True, text=True, timeout=60, check=False)
        assert live.returncode == 0, live.stderr[-3000:]
        count_when(data_dir, "spans", result.spans + 20, timeout=20)
        yield data_dir
    finally:
        llm.shutdown()
        assert collector.stop() == 0


def rows(data_dir: Path, sql: str) -> list[dict]:
    return query(data_dir, sql).to_pylist()


LIVE = "resource_attributes['spanlake.demo.backfill'] is null"


def test_several_features_users_and_sessions(lake: Path) -> None:
    got = rows(lake, "select count(distinct feature) f, count(distinct user_id) u, count(distinct session_id) s "
                     "from spans where operation = 'chat'")[0]
    assert got["f"] >= 5 and got["u"] >= 15 and got["s"] >= 50  # 4 features + the judge
    live = rows(lake, f"select count(distinct feature) f from spans where operation = 'chat' and {LIVE}")[0]
    assert live["f"] >= 3


def test_prompt_v4_doubles_output_length(lake: Path) -> None:
    by = {(r["response_model"], r["prompt_version"]): r["out"] for r in rows(lake, """
        select response_model, prompt_version, avg(output_tokens) as out from spans
        where prompt_name = 'summarise-ticket' and output_tokens is not null group by all""")}
    ratios = [by[(m, "v4")] / by[(m, "v3")] for m, v in by if v == "v4" and (m, "v3") in by]
    assert ratios and all(1.6 < r < 2.5 for r in ratios), by


def test_silent_model_swap_under_a_pinned_request_model(lake: Path) -> None:
    got = rows(lake, f"""
        select response_model, attributes['openai.response.system_fingerprint'] fp, min(start_time) first,
               count(*) n, count(*) filter (where {LIVE}) live
        from spans where request_model = '{SWAPPED_MODEL}' and response_model is not null
        group by all order by first""")
    assert [r["response_model"] for r in got] == [SWAPPED_MODEL, "gpt-4o-2024-11-20"], got
    assert got[0]["fp"] != got[1]["fp"]
    assert got[0]["live"] == 0 and got[1]["live"] > 0  # live traffic runs on the swapped model


def test_429_burst_falls_back_to_anthropic_in_the_same_trace(lake: Path) -> None:
    got = rows(lake, f"""
        select count(distinct f.trace_id) as traces, count(distinct f.trace_id) filter (where {LIVE.replace('resource', 'f.resource')}) as live
        from spans f join spans a on a.trace_id = f.trace_id and a.start_time >= f.end_time
        where f.error_type = 'RateLimitError' and f.provider = 'openai'
          and a.provider = 'anthropic' and a.error_type is null""")[0]
    assert got["traces"] >= 10 and got["live"] >= 1, got


def test_feedback_and_judge_scores_are_linked_log_records(lake: Path) -> None:
    got = {r["name"]: r for r in rows(lake, """
        select l.attributes['gen_ai.evaluation.name'] as name, count(*) n, count(s.span_id) linked,
               avg(cast(l.attributes['gen_ai.evaluation.score.value'] as double)) score
        from logs l left join spans s on s.trace_id = l.trace_id and s.span_id = l.span_id
        where l.event_name = 'gen_ai.evaluation.result' group by all""")}
    assert set(got) >= {"user_feedback", "helpfulness"}
    for r in got.values():
        assert r["n"] >= 50 and r["linked"] == r["n"] and 0.3 < r["score"] < 1.0


def test_research_agent_cost_spike(lake: Path) -> None:
    story = Story(CONFIG)
    start, end = story.first_spike
    got = rows(lake, f"""
        select (start_time >= '{start.isoformat()}' and start_time < '{end.isoformat()}') as spike,
               sum(cost_usd) / (epoch(max(start_time)) - epoch(min(start_time))) as usd_per_s
        from spans where feature = 'research-agent' and {LIVE.replace('is null', 'is not null')}
        group by all""")
    rate = {r["spike"]: r["usd_per_s"] for r in got}
    assert rate[True] > 5 * rate[False], rate
