"""Errors inside the instrumentation: logged once per site, then swallowed, never reaching the app."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("spanlake.instrumentation")

_reported: set[str] = set()
_lock = threading.Lock()


def report_internal_error(where: str) -> None:
    """Log the exception being handled: a warning with traceback the first time per site, debug after.

    Call only from an `except Exception` block at the instrumentation boundary.
    """
    with _lock:
        first = where not in _reported
        _reported.add(where)
    if first:
        logger.warning(
            "spanlake instrumentation error in %s (ignored; the app is unaffected)", where, exc_info=True  # noqa: LOG014
        )
    else:
        logger.debug("spanlake instrumentation error in %s", where, exc_info=True)  # noqa: LOG014
