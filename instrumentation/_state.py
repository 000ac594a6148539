"""The telemetry of the active `instrument()` call, for APIs used outside wrappers (feedback)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .telemetry import Telemetry

_active: Telemetry | None = None


def set_active(telemetry: Telemetry | None) -> None:
    """Remember (or forget, with None) the active telemetry."""
    global _active
    _active = telemetry


def active() -> Telemetry | None:
    """The active telemetry, or None when not instrumented."""
    return _active
