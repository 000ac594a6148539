"""`SpanlakeInstrumentor`: the BaseInstrumentor behind `sl.instrument()` and zero-code use.

`opentelemetry-instrument python app.py` finds it through the `opentelemetry_instrumentor` entry point
and calls `instrument()` with no arguments, which sets up OTLP providers from `OTEL_*` variables unless
the app (or a distro) already has global ones.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from . import _state
from ._providers import resolve_providers
from ._safety import report_internal_error
from .config import load_config
from .package import SUPPORTED, _instruments
from .redact import default_redactor
from .telemetry import Telemetry, build_telemetry

logger = logging.getLogger(__name__)


def _supported(library: str) -> bool:
    """Whether `library` is installed in a supported version."""
    conflict = get_dependency_conflicts([SUPPORTED[library]])
    if conflict is not None:
        logger.debug("not instrumenting %s: %s", library, conflict)
    return conflict is None


class SpanlakeInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments every supported GenAI client library that is installed (see package.py)."""

    # BaseInstrumentor is a singleton whose __init__ runs on every `SpanlakeInstrumentor()` call, so the
    # state lives in attributes set by _instrument, never reset by a constructor.
    _undo: list[Any]
    _telemetry: Telemetry | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        redactor = kwargs.get("redactor")
        config = load_config(
            service_name=kwargs.get("service_name"),
            capture_content=kwargs.get("capture_content"),
            max_content_chars=kwargs.get("max_content_chars"),
            redactor=default_redactor if redactor is None else redactor,
            libraries=kwargs.get("libraries"),
        )
        providers = resolve_providers(
            config, kwargs.get("tracer_provider"), kwargs.get("meter_provider"), kwargs.get("logger_provider")
        )
        telemetry = build_telemetry(config, providers)
        self._telemetry = telemetry
        self._undo = []
        _state.set_active(telemetry)
        for library in SUPPORTED:
            if (config.libraries is None or library in config.libraries) and _supported(library):
                self._instrument_library(library, telemetry)

    def _instrument_library(self, library: str, telemetry: Telemetry) -> None:
        try:
            if library == "openai":
                from .openai_wrappers import instrument_openai, uninstrument_openai

                wrapped = instrument_openai(telemetry)
                self._undo.append(lambda: uninstrument_openai(wrapped))
            elif library == "anthropic":
                from .anthropic_wrappers import AnthropicInstrumentation

                instrumentation = AnthropicInstrumentation(telemetry)
                instrumentation.instrument()
                self._undo.append(instrumentation.uninstrument)
        except Exception:  # noqa: BLE001 - boundary: a library we cannot wrap must not break the app
            report_internal_error(f"instrument {library}")

    def _uninstrument(self, **kwargs: Any) -> None:
        while getattr(self, "_undo", None):
            undo = self._undo.pop()
            try:
                undo()
            except Exception:  # noqa: BLE001 - boundary
                report_internal_error("uninstrument")
        if self._telemetry is not None:
            self._telemetry.providers.flush()
        self._telemetry = None
        _state.set_active(None)

    @property
    def telemetry(self) -> Telemetry | None:
        """The active telemetry handles (None when not instrumented)."""
        return self._telemetry
