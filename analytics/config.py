"""Typed analytics configuration, parsed from the config file's tables (``Settings.extra``).

Config file shapes (TOML)::

    [[slo]]                       # or [slo.<name>]
    name = "ttft-gpt4o"
    metric = "ttft_p99"           # duration_p50/p95/p99/mean, ttft_p50/p95/p99/mean (seconds), error_rate
    max = 2.0
    window = "24h"
    request_model = "gpt-4o"      # any other key filters on a dimension (column, "tag:<k>", "attr:<k>")

    [[budgets]]                   # or [budgets.<name>]
    name = "chat-daily"
    period = "day"                # day | month
    soft_usd = 50.0               # alert
    hard_usd = 100.0              # status "exceeded" at GET /v1/budgets
    feature = "chat"              # filter; or per = "feature" for one budget per value

    [anomalies]
    k = 2.0
    min_history = 24              # buckets of history before anything is flagged
    min_count = 20                # calls per bucket below which a bucket is never judged (sparse hours are pooled)
    tags = ["team"]               # cost series (per request, per hour, per day) also per these tags

    [alerts]
    webhook_url = "https://hooks.example.com/..."
    webhook_format = "json"       # json | slack
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spanlake.analytics.window import parse_duration

SLO_METRICS = ("duration_p50", "duration_p95", "duration_p99", "duration_mean",
               "ttft_p50", "ttft_p95", "ttft_p99", "ttft_mean", "error_rate")
PERIODS = ("day", "month")
WEBHOOK_FORMATS = ("json", "slack")


@dataclass(frozen=True)
class SLO:
    """An objective: ``metric`` over ``window`` for the calls matching ``filters`` must be ≤ ``max``."""

    name: str
    metric: str
    max: float
    window: dt.timedelta = dt.timedelta(hours=24)
    filters: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.metric not in SLO_METRICS:
            raise ValueError(f"slo {self.name!r}: metric must be one of {', '.join(SLO_METRICS)}")
        if self.max <= 0:
            raise ValueError(f"slo {self.name!r}: max must be positive")


@dataclass(frozen=True)
class Budget:
    """A spend limit per day or month, for the calls matching ``filters`` (or each value of ``per``)."""

    name: str
    period: str
    hard_usd: float
    soft_usd: float | None = None
    filters: Mapping[str, str] = field(default_factory=dict)
    per: str | None = None

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise ValueError(f"budget {self.name!r}: period must be day or month")
        if self.hard_usd <= 0 or (self.soft_usd is not None and not 0 < self.soft_usd <= self.hard_usd):
            raise ValueError(f"budget {self.name!r}: need 0 < soft_usd <= hard_usd")


@dataclass(frozen=True)
class AnomalyConfig:
    """Rolling mean ± kσ detector settings, with the guards that keep it quiet on thin data."""

    k: float = 2.0
    min_history: int = 24
    min_count: int = 20
    history: dt.timedelta = dt.timedelta(days=7)
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", tuple(str(t) for t in self.tags))
        if self.k <= 0 or self.min_history < 2 or self.min_count < 1:
            raise ValueError("anomalies: need k > 0, min_history >= 2, min_count >= 1")


@dataclass(frozen=True)
class AlertConfig:
    """Where alerts go besides the lake and the terminal."""

    webhook_url: str | None = None
    webhook_format: str = "json"
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.webhook_format not in WEBHOOK_FORMATS:
            raise ValueError("alerts: webhook_format must be json or slack")


@dataclass(frozen=True)
class AnalyticsConfig:
    slos: tuple[SLO, ...] = ()
    budgets: tuple[Budget, ...] = ()
    anomalies: AnomalyConfig = AnomalyConfig()
    alerts: AlertConfig = AlertConfig()


def _entries(raw: Any) -> list[dict[str, Any]]:
    """Accept both ``[[slo]]`` (a list) and ``[slo.<name>]`` (a table of tables)."""
    if raw is None:
        return []
    if isinstance(raw, list):
        return [dict(item) for item in raw]
    if isinstance(raw, Mapping):
        return [{"name": name, **dict(body)} for name, body in raw.items() if isinstance(body, Mapping)]
    raise ValueError(f"expected a table or an array of tables, got {type(raw).__name__}")


def _filters(entry: Mapping[str, Any], known: set[str]) -> dict[str, str]:
    return {k: str(v) for k, v in entry.items() if k not in known}


def parse_slo(entry: Mapping[str, Any]) -> SLO:
    known = {"name", "metric", "max", "window"}
    name = str(entry.get("name") or entry.get("metric", "slo"))
    return SLO(name=name, metric=str(entry.get("metric", "")), max=float(entry.get("max", 0)),
               window=parse_duration(entry.get("window", "24h")), filters=_filters(entry, known))


def parse_budget(entry: Mapping[str, Any]) -> Budget:
    known = {"name", "period", "soft_usd", "hard_usd", "per"}
    soft = entry.get("soft_usd")
    return Budget(name=str(entry.get("name", "budget")), period=str(entry.get("period", "day")),
                  hard_usd=float(entry.get("hard_usd", 0)), soft_usd=None if soft is None else float(soft),
                  filters=_filters(entry, known), per=entry.get("per"))


def load_config(extra: Mapping[str, Any]) -> AnalyticsConfig:
    """Typed analytics config from ``Settings.extra``; raises ValueError on a bad entry."""
    slos = tuple(parse_slo(e) for e in _entries(extra.get("slo", extra.get("slos"))))
    budgets = tuple(parse_budget(e) for e in _entries(extra.get("budgets", extra.get("budget"))))
    anomalies_raw = dict(extra.get("anomalies", {}))
    if "history" in anomalies_raw:
        anomalies_raw["history"] = parse_duration(anomalies_raw["history"])
    alerts_raw = dict(extra.get("alerts", {}))
    return AnalyticsConfig(slos=slos, budgets=budgets, anomalies=AnomalyConfig(**anomalies_raw),
                           alerts=AlertConfig(**alerts_raw))
