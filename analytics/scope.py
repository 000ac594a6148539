"""A Lake narrowed to some services: every analytic run through it sees only those services' spans.

The UI's global service filter is this object, so no analytic needs a service argument of its own.
Log records (evaluation scores, feedback) are not narrowed: a judge often runs as its own service.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import ibis.expr.types as ir
from spanlake.analytics.lake import Lake
from spanlake.analytics.window import Window


class ScopedLake(Lake):
    """A :class:`Lake` whose ``spans()`` keep only ``services`` (all services when empty)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, services: Sequence[str] = ()) -> None:
        super().__init__(con)
        self.services = tuple(services)

    def spans(self, window: Window, llm_only: bool = True) -> ir.Table:
        t = super().spans(window, llm_only)
        return t.filter(t.service_name.isin(list(self.services))) if self.services else t
