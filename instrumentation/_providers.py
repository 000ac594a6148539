"""Tracer, meter and logger providers: injected ones, else the app's global ones, else OTLP ones we create.

A global provider is set only when none exists (never replacing an app's real provider).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry._logs import LoggerProvider, NoOpLoggerProvider
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider, TracerProvider

from .config import InstrumentationConfig

logger = logging.getLogger(__name__)


@dataclass
class Providers:
    """The providers in use, and the SDK providers spanlake created (flushed on uninstrument)."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    created: list[Any] = field(default_factory=list)

    def flush(self) -> None:
        """Flush what we created so nothing is lost when the app stops soon after."""
        for provider in self.created:
            try:
                provider.force_flush()
            except Exception:
                logger.debug("flush of %r failed", provider, exc_info=True)


def _is_real_tracer_provider(provider: TracerProvider) -> bool:
    return not isinstance(provider, (ProxyTracerProvider, NoOpTracerProvider))


def _is_real_meter_provider(provider: MeterProvider) -> bool:
    # The API's proxy class is private; recognise it by name rather than importing it.
    return not isinstance(provider, NoOpMeterProvider) and type(provider).__name__ != "_ProxyMeterProvider"


def _is_real_logger_provider(provider: LoggerProvider) -> bool:
    # ProxyLoggerProvider is not exported by the logs API package; recognise it by name.
    return not isinstance(provider, NoOpLoggerProvider) and type(provider).__name__ != "ProxyLoggerProvider"


def _resource(config: InstrumentationConfig) -> Any:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    return Resource.create({SERVICE_NAME: config.service_name} if config.service_name else None)


def _exporter(signal: str, protocol: str) -> Any:
    """The OTLP exporter for a signal; endpoint, headers, TLS and timeout come from OTEL_* env vars."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc import _log_exporter as glog
        from opentelemetry.exporter.otlp.proto.grpc import metric_exporter as gmetric
        from opentelemetry.exporter.otlp.proto.grpc import trace_exporter as gtrace

        grpc_classes = {
            "traces": gtrace.OTLPSpanExporter,
            "metrics": gmetric.OTLPMetricExporter,
            "logs": glog.OTLPLogExporter,
        }
        return grpc_classes[signal]()
    if protocol not in ("http/protobuf", "http"):
        logger.warning("OTLP protocol %r is not supported; using http/protobuf", protocol)
    from opentelemetry.exporter.otlp.proto.http import _log_exporter as hlog
    from opentelemetry.exporter.otlp.proto.http import metric_exporter as hmetric
    from opentelemetry.exporter.otlp.proto.http import trace_exporter as htrace

    http_classes = {
        "traces": htrace.OTLPSpanExporter,
        "metrics": hmetric.OTLPMetricExporter,
        "logs": hlog.OTLPLogExporter,
    }
    return http_classes[signal]()


def _create_tracer_provider(config: InstrumentationConfig) -> Any:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = SdkTracerProvider(resource=_resource(config))
    provider.add_span_processor(BatchSpanProcessor(_exporter("traces", config.otlp_protocols["traces"])))
    return provider


def _create_meter_provider(config: InstrumentationConfig) -> Any:
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    reader = PeriodicExportingMetricReader(_exporter("metrics", config.otlp_protocols["metrics"]))
    return SdkMeterProvider(resource=_resource(config), metric_readers=[reader])


def _create_logger_provider(config: InstrumentationConfig) -> Any:
    from opentelemetry.sdk._logs import LoggerProvider as SdkLoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    provider = SdkLoggerProvider(resource=_resource(config))
    provider.add_log_record_processor(
        BatchLogRecordProcessor(_exporter("logs", config.otlp_protocols["logs"]))
    )
    return provider


def resolve_providers(
    config: InstrumentationConfig,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    logger_provider: LoggerProvider | None = None,
) -> Providers:
    """Pick a provider per signal: injected > app's global > created (and installed as global)."""
    created: list[Any] = []
    if tracer_provider is None:
        tracer_provider = trace.get_tracer_provider()
        if not _is_real_tracer_provider(tracer_provider) and not config.sdk_disabled:
            tracer_provider = _create_tracer_provider(config)
            trace.set_tracer_provider(tracer_provider)
            created.append(tracer_provider)
    if meter_provider is None:
        meter_provider = metrics.get_meter_provider()
        if not _is_real_meter_provider(meter_provider) and not config.sdk_disabled:
            meter_provider = _create_meter_provider(config)
            metrics.set_meter_provider(meter_provider)
            created.append(meter_provider)
    if logger_provider is None:
        logger_provider = _logs.get_logger_provider()
        if not _is_real_logger_provider(logger_provider) and not config.sdk_disabled:
            logger_provider = _create_logger_provider(config)
            _logs.set_logger_provider(logger_provider)
            created.append(logger_provider)
    return Providers(tracer_provider, meter_provider, logger_provider, created)
