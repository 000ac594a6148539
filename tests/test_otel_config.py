"""otel-config.yaml forwards every signal to spanlake's default endpoints, with batching and retries."""

from __future__ import annotations

import re
from typing import Any

import yaml
from harness import REPO
from spanlake.collector.settings import Settings

_ENV = re.compile(r"\$\{env:(\w+)(?::-([^}]*))?\}")


def _resolve(value: str) -> str:
    """Expand ${env:NAME:-default} the way the OTel Collector does when NAME is unset."""
    return _ENV.sub(lambda m: m.group(2) or "", value)


def _config() -> dict[str, Any]:
    return yaml.safe_load((REPO / "otel-config.yaml").read_text())


def test_exporters_point_at_spanlake_defaults() -> None:
    exporters = _config()["exporters"]
    defaults = Settings()
    assert _resolve(exporters["otlp/spanlake"]["endpoint"]) == f"{defaults.host}:{defaults.grpc_port}"
    assert _resolve(exporters["otlphttp/spanlake"]["endpoint"]) == f"http://{defaults.host}:{defaults.http_port}"
    for exporter in exporters.values():
        assert exporter["retry_on_failure"]["enabled"] is True
        assert exporter["sending_queue"]["enabled"] is True
        assert "SPANLAKE_AUTH_TOKEN" in exporter["headers"]["authorization"]


def test_every_signal_is_forwarded_batched() -> None:
    config = _config()
    pipelines = config["service"]["pipelines"]
    assert set(pipelines) == {"traces", "logs", "metrics"}
    for pipeline in pipelines.values():
        assert pipeline["receivers"] == ["otlp"]
        assert "batch" in pipeline["processors"] and set(pipeline["processors"]) <= set(config["processors"])
        assert pipeline["exporters"] and set(pipeline["exporters"]) <= set(config["exporters"])


def test_receiver_does_not_collide_with_spanlake_on_one_host() -> None:
    protocols = _config()["receivers"]["otlp"]["protocols"]
    defaults = Settings()
    ports = {int(_resolve(p["endpoint"]).rsplit(":", 1)[1]) for p in protocols.values()}
    assert ports.isdisjoint({defaults.grpc_port, defaults.http_port})
