"""One typed settings object for every spanlake server-side process.

Configuration flows one way: CLI flags > ``SPANLAKE_*`` environment variables > config file
(TOML) > defaults. Only :func:`load_settings` looks at the environment, and only through the
mapping it is handed; every component receives the finished :class:`Settings`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

ENV_PREFIX = "SPANLAKE_"
CONFIG_ENV = "SPANLAKE_CONFIG"
DEFAULT_CONFIG_FILE = "spanlake.toml"


@dataclass(frozen=True)
class Setting:
    """Documentation of one setting: its name (the env var is ``SPANLAKE_<NAME>``) and what it does."""

    name: str
    help: str


@dataclass(frozen=True)
class Settings:
    """Everything a collector, reader, analytics job or UI needs to know, validated once."""

    data_dir: Path = Path("spanlake-data")
    host: str = "127.0.0.1"
    grpc_port: int = 4317
    http_port: int = 4318
    auth_token: str | None = None
    max_request_bytes: int = 64 * 1024 * 1024
    http_request_timeout_s: float = 30.0
    http_workers: int = 8
    http_max_connections: int = 512
    max_attribute_bytes: int = 64 * 1024
    max_attribute_key_bytes: int = 1024
    max_anyvalue_depth: int = 16
    writers: int = 2
    flush_interval_s: float = 1.0
    flush_max_rows: int = 50_000
    max_backlog_bytes: int = 256 * 1024 * 1024
    max_lag_s: float = 2.0
    wal_segment_bytes: int = 64 * 1024 * 1024
    wal_fsync: bool = True
    compact_interval_s: float = 600.0
    shutdown_timeout_s: float = 30.0
    vacuum_grace_s: float = 3600.0
    retention_days: int = 0
    clock_skew_s: float = 24 * 3600.0
    dedup_window_spans: int = 2_000_000
    max_call_cost_usd: float = 1000.0
    log_level: str = "INFO"
    ui_password: str | None = None
    redact: bool = True
    redact_patterns: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("grpc_port", "http_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ValueError(f"{name} must be 0..65535, got {port}")
        positive = ("writers", "max_request_bytes", "http_request_timeout_s", "http_workers", "http_max_connections",
                    "max_attribute_bytes", "max_attribute_key_bytes", "max_anyvalue_depth", "flush_max_rows",
                    "max_backlog_bytes", "wal_segment_bytes")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.flush_interval_s <= 0:
            raise ValueError("flush_interval_s must be positive")
        if not self.max_call_cost_usd > 0:
            raise ValueError("max_call_cost_usd must be positive")
        if self.retention_days < 0:
            raise ValueError("retention_days must be >= 0 (0 keeps everything)")
        for pattern in self.redact_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"redact_patterns: {pattern!r} is not a valid regex: {exc}") from None

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def wal_dir(self) -> Path:
        return self.data_dir / "wal"

    def wal_shard_dir(self, shard: int) -> Path:
        return self.wal_dir / f"shard-{shard}"

    @property
    def quarantine_dir(self) -> Path:
        """WAL records the lake writer could not convert (``spanlake quarantine``)."""
        return self.data_dir / "quarantine"


SETTINGS_DOC: tuple[Setting, ...] = (
    Setting("data_dir", "Directory holding the lake (lake/), the write-ahead log (wal/) and spanlake.duckdb."),
    Setting("host", "Address the collector binds to (127.0.0.1 unless told otherwise)."),
    Setting("grpc_port", "OTLP/gRPC port (0 picks a free port)."),
    Setting("http_port", "OTLP/HTTP port (0 picks a free port)."),
    Setting("auth_token", "If set, both receivers require 'Authorization: Bearer <token>'."),
    Setting("max_request_bytes", "Largest request body accepted, after decompression (413 above it)."),
    Setting("http_request_timeout_s", "OTLP/HTTP: a whole request (headers and body) must arrive within this many "
                                      "seconds (408 and closed otherwise); idle keep-alive connections close too."),
    Setting("http_workers", "OTLP/HTTP: threads that inflate, parse and store request bodies (a bounded pool; "
                            "waiting connections cost no thread)."),
    Setting("http_max_connections", "OTLP/HTTP: open connections above which new ones are closed at once."),
    Setting("max_attribute_bytes", "Longer attribute values are truncated and listed in spanlake.truncated."),
    Setting("max_attribute_key_bytes", "Longer attribute keys are truncated (with a marker) and listed in "
                                       "spanlake.truncated."),
    Setting("max_anyvalue_depth", "Deeper nested AnyValues are cut and stored as a marker string."),
    Setting("writers", "Lake-writer processes; each owns one WAL shard (2 uses both cores of a 2-core machine)."),
    Setting("flush_interval_s", "Longest time an acknowledged item waits before its Delta commit."),
    Setting("flush_max_rows", "A Delta commit is made as soon as this many rows are pending."),
    Setting("max_backlog_bytes", "WAL bytes not yet in the lake above which receivers answer 503/RESOURCE_EXHAUSTED."),
    Setting("max_lag_s", "Receivers also refuse (503/RESOURCE_EXHAUSTED) once the backlog would take the writers "
                         "longer than this to commit, so acknowledged data stays queryable within seconds."),
    Setting("wal_segment_bytes", "Size at which the write-ahead log starts a new segment file."),
    Setting("wal_fsync", "fsync the WAL (group commit) before acknowledging; false trades durability for speed."),
    Setting("compact_interval_s", "How often the collector compacts today's and yesterday's partitions (0: never)."),
    Setting("shutdown_timeout_s", "On SIGTERM/SIGINT, how long the writers may take to commit everything "
                                  "acknowledged before they are terminated (the WAL keeps the rest)."),
    Setting("vacuum_grace_s", "Files replaced by compaction are deleted only after this long (longer than any reader)."),
    Setting("retention_days", "Partitions older than this many days are deleted (0 keeps everything)."),
    Setting("clock_skew_s", "Span times further than this in the future are clamped to the receive time."),
    Setting("dedup_window_spans", "How many recent (trace_id, span_id) keys the writer remembers to drop retries."),
    Setting("max_call_cost_usd", "An LLM call costing more than this (USD) is stored with cost_suspect = true "
                                 "and left out of budgets, so one absurd token count cannot exhaust them."),
    Setting("log_level", "Python logging level of the server processes."),
    Setting("ui_password", "If set, `spanlake ui` asks for this password first (set it when binding beyond 127.0.0.1)."),
    Setting("redact", "Replace secrets before they are stored: credential header/api-key attributes whole; sk-/sk-proj-/"
                      "sk-ant- keys, AWS key ids and Bearer tokens in any text; marked [REDACTED:kind], listed in "
                      "spanlake.redacted, counted in spanlake_redacted_values_total."),
    Setting("redact_patterns", "Extra regexes whose matches are redacted too (a TOML list; in the environment a "
                               "JSON list or one regex per line). Each makes every stored string pay a regex search."),
)

_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(Settings)}


def _coerce(name: str, raw: Any) -> Any:
    """Turn a string (env/flag) or TOML value into the field's type."""
    kind = _FIELD_TYPES[name]
    if raw is None:
        return None
    if kind == "Path":
        return Path(raw)
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"{name}: expected a boolean, got {raw!r}")
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "tuple[str, ...]":
        return _string_tuple(name, raw)
    return str(raw)


def _string_tuple(name: str, raw: Any) -> tuple[str, ...]:
    """A TOML list, or a string holding a JSON list or one item per line, → a tuple of strings."""
    if isinstance(raw, (list, tuple)):
        return tuple(str(x) for x in raw)
    text = str(raw).strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError:
            items = None
        if isinstance(items, list):
            return tuple(str(x) for x in items)
    if not text:
        return ()
    return tuple(line for line in text.splitlines() if line.strip())


def read_config_file(path: Path | None) -> dict[str, Any]:
    """Read the TOML config file; its top-level keys are settings, its tables (slo, budgets...) extras."""
    if path is None or not path.exists():
        return {}
    with path.open("rb") as fh:
        return tomllib.load(fh)


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_path: Path | None = None,
) -> Settings:
    """Merge flags (``overrides``, None values ignored) > env > config file > defaults into Settings."""
    environ = environ or {}
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if config_path is None and environ.get(CONFIG_ENV):
        config_path = Path(environ[CONFIG_ENV])
    if config_path is None:
        config_path = Path(DEFAULT_CONFIG_FILE)
    file_values = read_config_file(config_path)
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, raw in file_values.items():
        if key in _FIELD_TYPES and key != "extra":
            values[key] = _coerce(key, raw)
        else:
            extra[key] = raw
    for name in _FIELD_TYPES:
        env_value = environ.get(ENV_PREFIX + name.upper())
        if env_value is not None and name != "extra":
            values[name] = _coerce(name, env_value)
    for name, raw in overrides.items():
        values[name] = _coerce(name, raw)
    for name in ("auth_token", "ui_password"):
        if values.get(name) == "":
            values[name] = None
    return Settings(**values, extra=extra)
