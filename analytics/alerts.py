"""Alerts: state (firing → resolved), deduplication, storage in the lake and webhook delivery.

An alert's ``key`` names *what* is wrong (an SLO, a budget scope, a metric of a group), not when, so
the same problem seen on consecutive runs stays one alert: first_seen is kept and last_seen moves.
Only transitions (newly firing, newly resolved) are sent to the webhook, so a long incident pages once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from spanlake.analytics.config import AlertConfig
from spanlake.analytics.results import read_result, write_result

logger = logging.getLogger(__name__)

ALERTS_TABLE = "alerts"
CATEGORIES = ("outage", "quality_regression", "cost_spike", "latency_spike")
FIRING, RESOLVED = "firing", "resolved"
RESOLVED_KEEP = dt.timedelta(days=7)
COLUMNS = ["key", "state", "category", "severity", "title", "evidence", "mitigation", "where_to_look", "source",
           "first_seen", "last_seen", "resolved_at"]


@dataclass(frozen=True)
class Alert:
    """One finding as the incident playbook wants it: what fired, evidence, first move, where to look."""

    key: str
    category: str
    severity: str
    title: str
    evidence: str
    mitigation: str
    where_to_look: str
    source: str

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"alert category must be one of {CATEGORIES}")


@dataclass(frozen=True)
class Transition:
    state: str
    alert: dict[str, object]


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=COLUMNS)


def reconcile(previous: pd.DataFrame | None, current: Sequence[Alert], now: dt.datetime
              ) -> tuple[pd.DataFrame, list[Transition]]:
    """Merge this run's alerts into the stored ones; returns the new table and the state transitions."""
    previous = _empty() if previous is None or previous.empty else previous
    old = {row["key"]: row for row in previous.to_dict("records")}
    rows, transitions = [], []
    seen = set()
    for alert in {a.key: a for a in current}.values():  # dedupe within the run: last one wins
        seen.add(alert.key)
        before = old.get(alert.key)
        still = before is not None and before["state"] == FIRING
        row = {**asdict(alert), "state": FIRING, "first_seen": before["first_seen"] if still else now,
               "last_seen": now, "resolved_at": None}
        rows.append(row)
        if not still:
            transitions.append(Transition(FIRING, row))
    for key, before in old.items():
        if key in seen:
            continue
        if before["state"] == FIRING:
            row = {**before, "state": RESOLVED, "resolved_at": now}
            rows.append(row)
            transitions.append(Transition(RESOLVED, row))
        elif before["resolved_at"] is not None and now - pd.Timestamp(before["resolved_at"]) < RESOLVED_KEEP:
            rows.append(before)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("first_seen", "last_seen", "resolved_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame.sort_values(["state", "category", "key"], ignore_index=True), transitions


def update_alerts(lake_dir: Path, current: Sequence[Alert], now: dt.datetime
                  ) -> tuple[pd.DataFrame, list[Transition]]:
    """Reconcile with the stored table under ``<lake>/results/alerts`` and store the result."""
    frame, transitions = reconcile(read_result(lake_dir, ALERTS_TABLE), current, now)
    write_result(lake_dir, ALERTS_TABLE, frame)
    return frame, transitions


def _jsonable(row: dict[str, object]) -> dict[str, object]:
    out = {}
    for k, v in row.items():
        if isinstance(v, (dt.datetime, pd.Timestamp)):
            out[k] = None if pd.isna(v) else v.isoformat()
        else:
            out[k] = None if v is None or (isinstance(v, float) and math.isnan(v)) else v
    return out


def slack_escape(value: object) -> str:
    """Text for Slack mrkdwn: ``&``, ``<``, ``>`` as entities, so names taken from spans (models, features)
    cannot become ``<!channel>`` pings or ``<url|text>`` links."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_body(transitions: Sequence[Transition], fmt: str = "json") -> bytes:
    """JSON body for a webhook; ``slack`` gives Slack's incoming-webhook shape ({"text": ...}), every field escaped."""
    alerts = [{**_jsonable(t.alert), "state": t.state} for t in transitions]
    if fmt == "slack":
        e = slack_escape
        lines = [f"{':red_circle:' if a['state'] == FIRING else ':white_check_mark:'} *[{e(a['state'])}] "
                 f"{e(a['category'])}* {e(a['title'])}\n> {e(a['evidence'])}\n> Mitigation: {e(a['mitigation'])}\n"
                 f"> Look at: {e(a['where_to_look'])}" for a in alerts]
        return json.dumps({"text": "\n".join(lines)}).encode()
    return json.dumps({"source": "spanlake", "alerts": alerts}).encode()


def send_webhook(config: AlertConfig, transitions: Sequence[Transition]) -> bool:
    """POST the transitions to the configured webhook; failures are logged, never raised."""
    if not config.webhook_url or not transitions:
        return False
    request = urllib.request.Request(config.webhook_url, data=webhook_body(transitions, config.webhook_format),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=config.timeout_s) as response:
            return 200 <= response.status < 300
    except OSError as exc:  # network boundary: an unreachable webhook must not stop analyze
        logger.warning("alert webhook %s failed: %s", config.webhook_url, exc)
        return False


def firing_counts(frame: pd.DataFrame | None, buckets: pd.DatetimeIndex) -> pd.Series:
    """How many stored alerts were firing at each bucket start (first_seen ≤ t < resolved_at), for a sparkline.

    The stored table keeps resolved alerts a week, so older buckets may undercount.
    """
    if frame is None or frame.empty:
        return pd.Series(0, index=buckets, dtype=int)
    first = pd.to_datetime(frame["first_seen"], utc=True)
    resolved = pd.to_datetime(frame["resolved_at"], utc=True)
    counts = [int(((first <= t) & (resolved.isna() | (resolved > t))).sum()) for t in buckets]
    return pd.Series(counts, index=buckets, dtype=int)
