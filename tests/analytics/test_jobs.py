"""analyze end to end: result tables, alert state and webhook, the DuckDB catalog, the CLI, GET /v1/budgets."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
from pathlib import Path
from typing import ClassVar

import duckdb
import numpy as np
import pytest
from harness import CollectorProcess, http_get
from span_factory import NOW, hourly_times, spans, write_lake
from spanlake.analytics import alerts as alerting
from spanlake.analytics.alerts import Alert, reconcile, webhook_body
from spanlake.analytics.config import load_config
from spanlake.analytics.jobs import JOBS, analyze
from spanlake.analytics.results import read_result
from spanlake.analytics.window import Window
from spanlake.collector.settings import load_settings
from spanlake.ui.cli import main


class _Hook(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook():
    _Hook.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.bodies
    server.shutdown()
    server.server_close()


def _busy_lake(lake_dir: Path, end: dt.datetime, hours: int = 72) -> int:
    """Three days of two features on two models, with an expensive, slow last hour."""
    rng = np.random.default_rng(11)
    n = hours * 40
    times = hourly_times(end - dt.timedelta(hours=hours), hours, 40, rng)
    bad = times >= int((end - dt.timedelta(hours=1)).timestamp() * 1e6)
    cost = np.where(bad, 0.2, rng.normal(0.01, 0.001, n))
    table = spans(n, times, feature=rng.choice(["chat", "search"], n), cost_usd=cost,
                  request_model=rng.choice(["gpt-4o", "claude-3-5-sonnet-20241022"], n),
                  duration_ms=np.where(bad, 9000.0, rng.normal(800, 50, n)), ttft_s=rng.exponential(0.3, n),
                  prompt_name="answer", prompt_version=np.where(times > times.mean(), "v2", "v1"),
                  user_id=rng.choice(["u1", "u2", "u3"], n), session_id=rng.choice(["s1", "s2"], n))
    write_lake(lake_dir, [table])
    return n


def _config_file(tmp_path: Path, webhook_url: str | None = None, fmt: str = "json") -> Path:
    text = ('[[slo]]\nname = "p99"\nmetric = "duration_p99"\nmax = 2.0\n\n'
            '[[budgets]]\nname = "daily"\nperiod = "day"\nsoft_usd = 1.0\nhard_usd = 2.0\n\n'
            '[anomalies]\nk = 2\nhistory = "2d"\n')
    if webhook_url:
        text += f'\n[alerts]\nwebhook_url = "{webhook_url}"\nwebhook_format = "{fmt}"\n'
    path = tmp_path / "spanlake.toml"
    path.write_text(text)
    return path


def test_analyze_writes_results_alerts_catalog_and_posts(tmp_path, webhook):
    url, bodies = webhook
    data_dir = tmp_path / "data"
    n = _busy_lake(data_dir / "lake", NOW)
    settings = load_settings({"data_dir": data_dir}, {}, _config_file(tmp_path, url))
    config = load_config(settings.extra)
    outcome = analyze(settings, config, NOW, Window.last("24h", NOW))
    assert outcome.failures == {}
    assert set(outcome.results) == set(JOBS)
    assert read_result(settings.lake_dir, "latency_by_model") is not None
    firing = outcome.alerts[outcome.alerts.state == "firing"]
    assert {"slo:p99", "budget:daily:all calls"} <= set(firing.key)
    assert {"cost_spike", "latency_spike"} <= set(firing.category)
    assert "anomaly:cost_per_request:feature:chat" in set(firing.key)  # the last hour's spike
    assert len(bodies) == 1 and len(json.loads(bodies[0])["alerts"]) == len(outcome.transitions)
    with duckdb.connect(str(outcome.catalog), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM spans").fetchone()[0] == n
        assert con.execute("SELECT count(*) FROM results.alerts WHERE state = 'firing'").fetchone()[0] == len(firing)
        assert con.execute("SELECT count(*) FROM logs").fetchone()[0] == 0  # empty tables are typed, empty views
        assert con.execute("SELECT count(*) FROM results.eval_drift").fetchone()[0] == 0
    again = analyze(settings, config, NOW + dt.timedelta(minutes=1), Window.last("24h", NOW))
    assert again.transitions == [] and len(bodies) == 1  # same problems: deduplicated, not re-sent
    assert (again.alerts.set_index("key").loc["slo:p99", "first_seen"] == NOW)


def test_reconcile_resolves_and_refires():
    a = Alert("k1", "outage", "critical", "t", "e", "m", "w", "s")
    frame, transitions = reconcile(None, [a, a], NOW)
    assert len(frame) == 1 and [t.state for t in transitions] == ["firing"]
    later = NOW + dt.timedelta(hours=1)
    frame, transitions = reconcile(frame, [], later)
    assert frame.iloc[0].state == "resolved" and frame.iloc[0].resolved_at == later
    assert [t.state for t in transitions] == ["resolved"]
    frame, transitions = reconcile(frame, [a], later + dt.timedelta(hours=1))
    assert frame.iloc[0].state == "firing" and [t.state for t in transitions] == ["firing"]
    with pytest.raises(ValueError):
        Alert("k", "bad", "x", "t", "e", "m", "w", "s")


def test_slack_body_and_unreachable_webhook():
    _, transitions = reconcile(None, [Alert("k", "cost_spike", "warning", "spend up", "ev", "cap", "here", "s")], NOW)
    text = json.loads(webhook_body(transitions, "slack"))["text"]
    assert "cost_spike" in text and "spend up" in text
    config = load_config({"alerts": {"webhook_url": "http://127.0.0.1:9/none", "timeout_s": 0.5}}).alerts
    assert alerting.send_webhook(config, transitions) is False


def test_cli_analyze_and_report_json(tmp_path, capsys):
    data_dir = tmp_path / "data"
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    _busy_lake(data_dir / "lake", now)
    config = _config_file(tmp_path)
    assert main(["analyze", "--data-dir", str(data_dir), "--config", str(config)]) == 0
    assert (data_dir / "spanlake.duckdb").exists()
    capsys.readouterr()
    assert main(["report", "--data-dir", str(data_dir), "--config", str(config), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {f["category"] for f in doc["findings"]} >= {"cost_spike"}
    assert doc["sections"]["latency_by_model"] and doc["alert_state"]
    assert main(["report", "--data-dir", str(data_dir), "--config", str(config), "--window", "6h"]) == 0
    text = capsys.readouterr().out
    assert "Findings" in text and "Budgets" in text and "Latency by model" in text


def test_collector_serves_budgets(tmp_path):
    data_dir = tmp_path / "data"
    now = dt.datetime.now(dt.timezone.utc)
    times = np.array([int((now - dt.timedelta(minutes=m)).timestamp() * 1e6) for m in range(1, 31)])
    write_lake(data_dir / "lake", [spans(30, times, cost_usd=np.full(30, 0.1), feature="chat")])
    proc = CollectorProcess(data_dir, extra_args=["--config", str(_config_file(tmp_path))]).start()
    try:
        status, body = http_get(proc.http_url + "/v1/budgets")
    finally:
        assert proc.stop() == 0
    assert status == 200
    doc = json.loads(body)
    spend = doc["budgets"][0]["spend_usd"]
    assert spend == pytest.approx(3.0) or now.hour == 0  # a run straddling midnight UTC sees a new day
    assert doc["budgets"][0]["status"] == "exceeded" and doc["exceeded"] == ["daily"]


def test_slack_body_escapes_names_from_spans():
    """A model or feature name is data: `<!channel>` must not ping, `<url|text>` must not become a link."""
    model = "gpt-4o<!channel>"
    alert = Alert("k2", "outage", "critical", f"errors on {model}", f"5 of 9 calls to <https://evil|{model}> & more",
                  "fail over", "feature <!here>", "errors")
    _, transitions = reconcile(None, [alert], NOW)
    text = json.loads(webhook_body(transitions, "slack"))["text"]
    assert "<" not in text and ">" not in text.replace("\n> ", "\n")
    assert "gpt-4o&lt;!channel&gt;" in text and "&lt;https://evil|gpt-4o&lt;!channel&gt;&gt; &amp; more" in text
    assert "feature &lt;!here&gt;" in text
    doc = json.loads(webhook_body(transitions, "json"))  # the JSON format keeps values as they are
    assert doc["alerts"][0]["title"] == f"errors on {model}"
