"""otel-config.yaml forwards every signal to spanlake's default endpoints, with batching and retries, and is no
open relay: a receiver beyond loopback must require authentication (otel-config.auth.yaml adds it)."""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Mapping
from typing import Any

import yaml
from harness import REPO
from spanlake.collector.settings import Settings

_ENV = re.compile(r"\$\{env:(\w+)(?::-([^}]*))?\}")


# What a careless or hostile environment could put in every variable: a public address.
_PUBLIC_ENV = "203.0.113.7"


def _resolve(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Expand ${env:NAME:-default} the way the OTel Collector does (the default when NAME is unset)."""
    environ = environ or {}
    return _ENV.sub(lambda m: environ.get(m.group(1), m.group(2) or ""), value)


def _config(*names: str) -> dict[str, Any]:
    """The named files merged in order, as `otelcol --config a --config b` does: maps deep-merged, the rest
    (lists, scalars) replaced by the later file."""
    merged: dict[str, Any] = {}
    for name in names or ("otel-config.yaml",):
        _merge(merged, yaml.safe_load((REPO / name).read_text()))
    return merged


def _merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname or an empty host ("" binds every interface)


def _host(endpoint: str) -> str:
    """The host part of host:port, [v6]:port or a bare host."""
    if endpoint.startswith("["):
        return endpoint[1:endpoint.find("]")]
    return endpoint.rsplit(":", 1)[0] if ":" in endpoint else endpoint


def open_relay_endpoints(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[str]:
    """Receiver endpoints that listen beyond loopback without an authenticator the service actually runs."""
    extensions = set(config.get("extensions") or {})
    enabled = set((config.get("service") or {}).get("extensions") or [])
    problems = []
    for receiver_name, receiver in (config.get("receivers") or {}).items():
        servers = dict((receiver or {}).get("protocols") or {})
        if "endpoint" in (receiver or {}):
            servers[""] = receiver
        for protocol, server in servers.items():
            endpoint = _resolve(str((server or {}).get("endpoint", "0.0.0.0:0")), environ)
            if _is_loopback(_host(endpoint)):
                continue
            authenticator = ((server or {}).get("auth") or {}).get("authenticator")
            if authenticator is None or authenticator not in extensions or authenticator not in enabled:
                problems.append(f"{receiver_name}/{protocol} listens on {endpoint} without authentication")
    return problems


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


def test_relay_listens_on_loopback_only_whatever_the_environment() -> None:
    """The relay adds spanlake's token to what it forwards; on its own it must be reachable only locally, even
    with every variable set to a public address (the listen host is no variable)."""
    config = _config()
    assert open_relay_endpoints(config) == []
    environ = {m.group(1): _PUBLIC_ENV for m in _ENV.finditer(yaml.safe_dump(config["receivers"]))}
    assert environ, "the receivers should still take their ports from the environment"
    assert open_relay_endpoints(config, environ) == []


def test_auth_overlay_binds_wide_only_with_bearer_token_auth() -> None:
    config = _config("otel-config.yaml", "otel-config.auth.yaml")
    endpoints = [_resolve(p["endpoint"]) for p in config["receivers"]["otlp"]["protocols"].values()]
    assert all(e.startswith("0.0.0.0:") for e in endpoints), endpoints  # the overlay's point: reachable
    assert open_relay_endpoints(config) == []
    assert open_relay_endpoints(config, {"OTELCOL_GRPC_ENDPOINT": f"{_PUBLIC_ENV}:4317"}) == []
    for extension in config["service"]["extensions"]:
        assert extension.split("/")[0] == "bearertokenauth"
        assert "OTELCOL_AUTH_TOKEN" in config["extensions"][extension]["token"]
    assert config["service"]["pipelines"] == _config()["service"]["pipelines"]  # the overlay forwards the same
    assert "otelcol-contrib" in (REPO / "otel-config.auth.yaml").read_text()
    assert "otelcol-contrib" in (REPO / "otel-config.yaml").read_text()


def test_open_relay_check_flags_unauthenticated_wide_receivers() -> None:
    """The check above can fail: the old default (0.0.0.0, no auth) and an authenticator never enabled are caught."""
    wide = {"receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "${env:X:-0.0.0.0:14317}"},
                                                 "http": {"endpoint": ":14318"}}}}}
    assert len(open_relay_endpoints(wide)) == 2
    not_enabled = {**_config("otel-config.yaml", "otel-config.auth.yaml"), "service": {"extensions": []}}
    assert len(open_relay_endpoints(not_enabled)) == 2
    lan = {"receivers": {"zipkin": {"endpoint": "10.0.0.5:9411"}}}
    assert open_relay_endpoints(lan) == ["zipkin/ listens on 10.0.0.5:9411 without authentication"]
