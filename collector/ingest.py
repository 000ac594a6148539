"""The single ingest path both receivers call: parse, validate, make durable, answer.

A receiver hands over the (decompressed) body and its format; :meth:`Ingest.accept` returns the
OTLP Export*ServiceResponse to send, with ``partial_success`` when items were rejected or repaired.
Nothing here knows the lake: accepted payloads go to the write-ahead log, as protobuf.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError, Message
from spanlake.collector.errors import InvalidPayload, Overloaded
from spanlake.collector.otlp_json import parse_json
from spanlake.collector.otlp_proto import SIGNALS, ParseOutcome, parse_protobuf, readable_payload
from spanlake.collector.self_metrics import SelfMetrics
from spanlake.collector.wal import WriteAheadLog

logger = logging.getLogger(__name__)

_REJECTED_FIELD = {"traces": "rejected_spans", "logs": "rejected_log_records", "metrics": "rejected_data_points"}


@dataclass(frozen=True)
class IngestResult:
    """What a receiver answers: the response message, and counts for its log line."""

    response: Message
    accepted: int
    rejected: int
    message: str


def _valid_span(span: Any) -> bool:
    tid, sid, pid = span.trace_id, span.span_id, span.parent_span_id
    return (len(tid) == 16 and len(sid) == 8 and len(pid) in (0, 8)
            and tid != b"\0" * 16 and sid != b"\0" * 8)


def _valid_log(record: Any) -> bool:
    return len(record.trace_id) in (0, 16) and len(record.span_id) in (0, 8)


def _points(metric: Any) -> int:
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind else 0


def validate(signal: str, request: Any) -> tuple[int, int]:
    """Drop invalid items from ``request`` in place; returns (kept, dropped) item counts."""
    types = SIGNALS[signal]
    kept = dropped = 0
    for res in getattr(request, types.resource_list):
        for scope in getattr(res, types.scope_list):
            items = getattr(scope, types.item_list)
            if signal == "metrics":
                kept += sum(_points(m) for m in items)
                continue
            check = _valid_span if signal == "traces" else _valid_log
            bad = [i for i, item in enumerate(items) if not check(item)]
            for i in reversed(bad):
                del items[i]
            kept += len(items)
            dropped += len(bad)
    return kept, dropped


class Ingest:
    """Shared by the gRPC and HTTP receivers of one collector process."""

    def __init__(self, wals: list[WriteAheadLog], metrics: SelfMetrics, max_backlog_bytes: Callable[[], int],
                 backlog: Callable[[], int]) -> None:
        self._wals = wals
        self._round_robin = itertools.count()
        self._metrics = metrics
        self._max_backlog = max_backlog_bytes
        self._backlog = backlog

    def accept(self, signal: str, body: bytes, fmt: str, protocol: str) -> IngestResult:
        """Parse ``body`` (fmt 'protobuf' or 'json'), store what is valid, return the answer."""
        if self._backlog() > self._max_backlog():
            self._metrics.add("spanlake_requests_total", protocol=protocol, outcome="overloaded")
            self._metrics.add("spanlake_dropped_total", 1, signal=signal)
            raise Overloaded("collector overloaded: write-ahead log backlog is full, retry later")
        received_ns = time.time_ns()
        outcome = parse_json(signal, body) if fmt == "json" else parse_protobuf(signal, body)
        kept, invalid = validate(signal, outcome.request)
        rejected = outcome.rejected + invalid
        if kept == 0 and outcome.rejected and outcome.problems:
            self._metrics.add("spanlake_requests_total", protocol=protocol, outcome="invalid")
            raise InvalidPayload("undecodable OTLP payload: " + "; ".join(outcome.problems[:3]))
        if kept:
            # The body as sent is stored only when it is exactly what was parsed; otherwise the
            # re-serialised request, checked to parse strictly (what the writer will do with it).
            if fmt == "json" or invalid or outcome.modified:
                try:
                    payload = readable_payload(signal, outcome)
                except DecodeError as exc:
                    self._metrics.add("spanlake_requests_total", protocol=protocol, outcome="invalid")
                    raise InvalidPayload(f"OTLP payload not storable after repair: {exc}") from exc
            else:
                payload = body
            self._shard(signal, outcome.request).append(signal, payload, received_ns)
        message = _describe(outcome, invalid)
        self._count(signal, protocol, kept, rejected)
        if message:
            logger.warning("%s %s: accepted %d, rejected %d: %s", protocol, signal, kept, rejected, message)
        return IngestResult(_response(signal, rejected, message), kept, rejected, message)

    def _shard(self, signal: str, request: Any) -> WriteAheadLog:
        """The WAL shard for a request: by its first trace id, so a client's retry of a request lands
        on the same shard (whose writer recognises the duplicates), and log records carrying a
        span's content usually land beside the span. Requests without trace ids go round-robin."""
        if len(self._wals) == 1:
            return self._wals[0]
        if signal != "metrics":
            types = SIGNALS[signal]
            for res in getattr(request, types.resource_list):
                for scope in getattr(res, types.scope_list):
                    for item in getattr(scope, types.item_list):
                        if item.trace_id:
                            return self._wals[item.trace_id[-1] % len(self._wals)]
        return self._wals[next(self._round_robin) % len(self._wals)]

    def _count(self, signal: str, protocol: str, kept: int, rejected: int) -> None:
        self._metrics.add("spanlake_received_total", kept + rejected, signal=signal)
        self._metrics.add("spanlake_accepted_total", kept, signal=signal)
        self._metrics.add("spanlake_rejected_total", rejected, signal=signal)
        self._metrics.add("spanlake_requests_total", protocol=protocol,
                          outcome="partial" if rejected else "ok")


def _describe(outcome: ParseOutcome, invalid_ids: int) -> str:
    parts: list[str] = []
    if invalid_ids:
        parts.append(f"{invalid_ids} item(s) with invalid trace/span ids")
    if outcome.rejected:
        parts.append(f"{outcome.rejected} undecodable item(s): " + "; ".join(outcome.problems[:3]))
    if outcome.repaired_strings:
        parts.append(f"{outcome.repaired_strings} string(s) with invalid UTF-8 repaired with U+FFFD")
    if outcome.dropped_attributes:
        parts.append(f"{outcome.dropped_attributes} undecodable attribute value(s) replaced by a marker")
    if outcome.dropped_parts:
        parts.append(f"{outcome.dropped_parts} undecodable resource/scope part(s) dropped, their items kept")
    if outcome.depth_cuts:
        parts.append(f"{outcome.depth_cuts} value(s) nested too deep cut with a marker")
    return "; ".join(parts)


def _response(signal: str, rejected: int, message: str) -> Message:
    response = SIGNALS[signal].response()
    if rejected or message:
        # The spec: partial_success with rejected 0 and a message conveys a warning.
        setattr(response.partial_success, _REJECTED_FIELD[signal], rejected)
        response.partial_success.error_message = message
    return response
