"""The telemetry handles the wrappers write to: tracer, GenAI metric instruments, event logger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from opentelemetry._logs import Logger
from opentelemetry.metrics import Histogram
from opentelemetry.trace import Tracer

from . import semconv as sc
from ._providers import Providers
from .config import InstrumentationConfig
from .feedback import ResponseIndex

SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.37.0"
VERSION: Final = "0.1.0"

# Bucket boundaries recommended by the GenAI metrics semconv.
_DURATION_BUCKETS: Final = [
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
]
_TOKEN_BUCKETS: Final = [
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
]


@dataclass(frozen=True)
class Telemetry:
    """One instrument() call's handles; wrappers close over it (contrib's handler pattern)."""

    config: InstrumentationConfig
    providers: Providers
    tracer: Tracer
    duration: Histogram
    token_usage: Histogram
    time_to_first_chunk: Histogram
    event_logger: Logger
    responses: ResponseIndex


def build_telemetry(config: InstrumentationConfig, providers: Providers) -> Telemetry:
    """Create tracer, meter instruments and event logger from the providers."""
    scope = sc.GEN_AI_INSTRUMENTATION_SCOPE
    tracer = providers.tracer_provider.get_tracer(scope, VERSION, schema_url=SCHEMA_URL)
    meter = providers.meter_provider.get_meter(scope, VERSION, schema_url=SCHEMA_URL)
    return Telemetry(
        config=config,
        providers=providers,
        tracer=tracer,
        duration=meter.create_histogram(
            sc.METRIC_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        ),
        token_usage=meter.create_histogram(
            sc.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        ),
        time_to_first_chunk=meter.create_histogram(
            sc.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to the first chunk of a streamed response",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        ),
        event_logger=providers.logger_provider.get_logger(scope, VERSION, schema_url=SCHEMA_URL),
        responses=ResponseIndex(),
    )
