"""OTLP requests → Arrow tables in the lake's schema. Pure: no I/O, no clock (receive time is given).

Builders accumulate column lists over many requests and build one Arrow table per flush, so
the per-item Python work is a tight loop of appends and the Arrow work is vectorised.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from spanlake.collector.attributes import AttributeDecoder, encode_value, extend_map
from spanlake.collector.normalize import GenAINormalizer, SpanBatch, SpanContent, resource_identity
from spanlake.collector.storage import schema
from spanlake.collector.value_limits import (
    MAX_INT64,
    clamp_count,
    clamp_counts,
    note_clamped,
    reject_implausible,
    time_or_zero,
)
from spanlake.instrumentation import semconv as sc

SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")
TEMPORALITY = ("UNSPECIFIED", "DELTA", "CUMULATIVE")
CLOCK_ADJUSTED = sc.SPANLAKE_CLOCK_ADJUSTED
_EPOCH_DAY = dt.date(1970, 1, 1)
_NS_PER_DAY = 86_400 * 10**9


def _map_array(offsets: list[int], keys: list[str], values: list[str]) -> pa.Array:
    return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(keys, pa.string()),
                                   pa.array(values, pa.string()))


class _MapColumn:
    """A string→string map column built from flat key/value lists and offsets."""

    def __init__(self) -> None:
        self.offsets = [0]
        self.keys: list[str] = []
        self.values: list[str] = []

    def add(self, attrs: dict[str, Any]) -> None:
        self.offsets.append(self.offsets[-1] + extend_map(attrs, self.keys, self.values))

    def add_encoded(self, keys: list[str], values: list[str]) -> None:
        """Add an entry already encoded (a resource shared by many spans is encoded once)."""
        self.keys.extend(keys)
        self.values.extend(values)
        self.offsets.append(self.offsets[-1] + len(keys))

    def array(self) -> pa.Array:
        return _map_array(self.offsets, self.keys, self.values)


def _resource_identity(resource: dict[str, Any]) -> tuple[str | None, str | None]:
    """(service name, environment) of a resource, with the fallbacks emitters need."""
    return resource_identity(resource)


def _days(ns: int) -> int:
    return ns // _NS_PER_DAY


# Columns SpanBuilder fills itself, in the order of the per-span row tuple.
_SPAN_FIXED = ("trace_id", "span_id", "parent_span_id", "trace_state", "name", "kind", "start_time_unix_nano",
               "end_time_unix_nano", "status_code", "status_message", "service_name", "environment",
               "scope_name", "scope_version", "dropped_attributes_count", "flags", "received_time", "events",
               "links")


# Columns SpanBuilder computes itself; every other column comes from the normaliser (or is NULL).
_OWN = frozenset({"attributes", "resource_attributes", "start_time", "end_time", "duration_ms",
                  schema.PARTITION_COLUMN, *_SPAN_FIXED})


class SpanBuilder:
    """Accumulates spans from many ExportTraceServiceRequests into one Arrow table.

    Per span it keeps one tuple of the fixed columns and the attribute maps (content taken out by
    the normaliser first); at ``take`` the normaliser reads the whole batch and returns every other
    schema column (missing ones are NULL), so it can add columns without touching this class.
    """

    def __init__(self, decoder: AttributeDecoder, clock_skew_ns: int, genai: GenAINormalizer | None = None) -> None:
        self._dec = decoder
        self.normalizer = genai if genai is not None else GenAINormalizer()
        self._skew = clock_skew_ns
        self._reset()

    def _reset(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.content: dict[int, SpanContent] = {}  # row → content taken out of its attributes
        self.attrs = _MapColumn()
        self.res_attrs = _MapColumn()
        self.ids: list[tuple[bytes, bytes]] = []  # raw (trace_id, span_id) for de-duplication

    def __len__(self) -> int:
        return len(self.rows)

    def add_request(self, request: Any, received_ns: int) -> None:
        for rs in request.resource_spans:
            resource = self._dec.to_dict(rs.resource.attributes)
            service, env = _resource_identity(resource)
            res_keys: list[str] = []
            res_values: list[str] = []
            extend_map(resource, res_keys, res_values)
            for ss in rs.scope_spans:
                scope_name, scope_version = ss.scope.name or None, ss.scope.version or None
                for span in ss.spans:
                    self._add_span(span, (res_keys, res_values), service, env, scope_name, scope_version,
                                   received_ns)

    def _add_span(self, span: Any, resource: tuple[list[str], list[str]], service: str | None, env: str | None,
                  scope_name: str | None, scope_version: str | None, received_ns: int) -> None:
        attrs = self._dec.to_dict(span.attributes)
        reject_implausible(attrs)
        start, end = span.start_time_unix_nano, span.end_time_unix_nano
        if start <= 0 or end < start or start > received_ns + self._skew or end > MAX_INT64:
            start, end = self._repair_clock(start, end, received_ns, attrs)
        trace_id, span_id, status = span.trace_id, span.span_id, span.status
        taken = self.normalizer.take_content(attrs, scope_name)
        if taken is not None:
            self.content[len(self.rows)] = taken
        self.ids.append((trace_id, span_id))
        kind = span.kind
        self.rows.append((
            trace_id.hex(), span_id.hex(), span.parent_span_id.hex() or None, span.trace_state or None,
            self._dec.text(span.name, attrs, sc.SPANLAKE_REDACTED_NAME), SPAN_KINDS[kind] if 0 <= kind < 6
            else str(kind), start, end, STATUS_CODES[status.code] if 0 <= status.code < 3 else "UNSET",
            self._dec.text(status.message, attrs, sc.SPANLAKE_REDACTED_STATUS_MESSAGE) or None,
            service, env, scope_name, scope_version, span.dropped_attributes_count, span.flags,
            received_ns // 1000,
            [self._event(e, attrs) for e in span.events] if span.events else None,
            [self._link(ln) for ln in span.links] if span.links else None))
        self.attrs.add(attrs)
        self.res_attrs.add_encoded(*resource)

    def _repair_clock(self, start: int, end: int, received_ns: int, attrs: dict[str, Any]) -> tuple[int, int]:
        """Keep times as sent unless they are unusable; say what was changed in an attribute."""
        reasons = []
        if start > MAX_INT64:
            start, reasons = 0, ["start_time beyond 2^63-1 ns"]
        if end > MAX_INT64:
            end, reasons = 0, reasons + ["end_time beyond 2^63-1 ns"]
        if start <= 0:
            start, reasons = (end if end > 0 else received_ns), ["start_time missing"]
        if end <= 0:
            end, reasons = start, reasons + ["end_time missing"]
        if end < start:
            end, reasons = start, reasons + ["end before start"]
        if start > received_ns + self._skew:
            duration = end - start
            start, end = received_ns, min(received_ns + duration, MAX_INT64)
            reasons.append("start_time in the future")
        if reasons:
            attrs[CLOCK_ADJUSTED] = "; ".join(reasons)
        return start, end

    def _event(self, event: Any, span_attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = self._dec.to_dict(event.attributes)
        when = event.time_unix_nano
        if when > MAX_INT64:
            when = time_or_zero(when, f"event {event.name!r} time_unix_nano", span_attrs)
        return {"time_unix_nano": when, "name": event.name,
                "attributes": [(k, encode_value(v)) for k, v in attrs.items()]}

    def _link(self, link: Any) -> dict[str, Any]:
        attrs = self._dec.to_dict(link.attributes)
        return {"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex(),
                "trace_state": link.trace_state or None,
                "attributes": [(k, encode_value(v)) for k, v in attrs.items()]}

    def _derived_columns(self, fixed: dict[str, Any], attrs: pa.Array) -> dict[str, pa.Array]:
        """The columns the normaliser derives from the whole batch."""
        return self.normalizer.columns(SpanBatch(
            attrs=attrs, scope_names=fixed["scope_name"], scope_versions=fixed["scope_version"], names=fixed["name"],
            status_codes=fixed["status_code"], status_messages=fixed["status_message"], events=fixed["events"],
            starts=fixed["start_time_unix_nano"], trace_ids=fixed["trace_id"], span_ids=fixed["span_id"],
            services=fixed["service_name"], content=self.content))

    def take(self, keep: list[bool] | None = None) -> pa.Table:
        """Build the Arrow table of everything added (optionally only rows where keep is True) and reset."""
        n = len(self.rows)
        fixed = dict(zip(_SPAN_FIXED, zip(*self.rows))) if n else {name: () for name in _SPAN_FIXED}
        starts = pa.array(fixed["start_time_unix_nano"], pa.int64())
        ends = pa.array(fixed["end_time_unix_nano"], pa.int64())
        arrays: dict[str, pa.Array] = {}
        attrs = self.attrs.array()
        derived = self._derived_columns(fixed, attrs) if n else {}
        for column in schema.SPAN_COLUMNS:
            name = column.name
            if name not in _OWN:
                arrays[name] = derived[name].cast(column.type) if name in derived else pa.nulls(n, column.type)
            elif name == "attributes":
                arrays[name] = attrs
            elif name == "resource_attributes":
                arrays[name] = self.res_attrs.array()
            elif name in ("start_time", "end_time"):
                src = starts if name == "start_time" else ends
                arrays[name] = pc.divide(src, 1000).cast(schema.TS)
            elif name == "duration_ms":
                # unsafe: durations beyond 2^53 ns (104 days) lose float precision, nothing else
                arrays[name] = pc.divide(pc.subtract(ends, starts).cast(pa.float64(), safe=False), 1e6)
            elif name == schema.PARTITION_COLUMN:
                arrays[name] = pc.divide(starts, _NS_PER_DAY).cast(pa.int32()).cast(pa.date32())
            elif name == "received_time":
                arrays[name] = pa.array(fixed[name], pa.int64()).cast(schema.TS)
            else:
                arrays[name] = pa.array(fixed[name], column.type)
        table = pa.table(arrays, schema=schema.arrow_schema(schema.SPANS))
        if keep is not None and not all(keep):
            table = table.filter(pa.array(keep))
        self._reset()
        return table


def _body_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else encode_value(value)


class _RecordBuilder:
    """Column lists for one table whose rows are built one record at a time (logs, metric points)."""

    TABLE: str = ""

    def _reset(self) -> None:
        self.cols: dict[str, list[Any]] = {c.name: [] for c in schema.COLUMNS[self.TABLE]}
        self.attrs = _MapColumn()
        self.res_attrs = _MapColumn()

    def __len__(self) -> int:
        return len(self.cols["time"])

    def take(self) -> pa.Table:
        """Build the Arrow table of everything added, and start over."""
        table = _build(self.cols, schema.COLUMNS[self.TABLE], self.TABLE, self.attrs, self.res_attrs)
        self._reset()
        return table


class LogBuilder(_RecordBuilder):
    """Accumulates log records from ExportLogsServiceRequests into one Arrow table."""

    TABLE = schema.LOGS

    def __init__(self, decoder: AttributeDecoder, genai: GenAINormalizer | None = None) -> None:
        self._dec = decoder
        self.normalizer = genai  # when given, GenAI content in log records goes to span_content too
        self._reset()

    def add_request(self, request: Any, received_ns: int) -> None:
        for rl in request.resource_logs:
            resource = self._dec.to_dict(rl.resource.attributes)
            service, _env = _resource_identity(resource)
            for sl in rl.scope_logs:
                for rec in sl.log_records:
                    self._add(rec, resource, service, sl.scope.name or None, sl.scope.version or None, received_ns)

    def _add(self, rec: Any, resource: dict[str, Any], service: str | None, scope_name: str | None,
             scope_version: str | None, received_ns: int) -> None:
        c = self.cols
        attrs = self._dec.to_dict(rec.attributes)
        sent, observed = rec.time_unix_nano, rec.observed_time_unix_nano
        if sent > MAX_INT64 or observed > MAX_INT64:
            sent = time_or_zero(sent, "time_unix_nano", attrs)
            observed = time_or_zero(observed, "observed_time_unix_nano", attrs)
        # Many GenAI log records carry only observed time; fall back to it, then to receive time.
        when = sent or observed or received_ns
        c["time"].append(when // 1000)
        c["time_unix_nano"].append(sent)
        c["observed_time_unix_nano"].append(observed)
        c["trace_id"].append(rec.trace_id.hex() or None)
        c["span_id"].append(rec.span_id.hex() or None)
        c["severity_number"].append(rec.severity_number)
        c["severity_text"].append(rec.severity_text or None)
        event_name = getattr(rec, "event_name", "") or attrs.get("event.name")
        c["event_name"].append(str(event_name) if event_name else None)
        body = self._dec.body(rec.body, attrs, sc.SPANLAKE_REDACTED_BODY) if rec.HasField("body") else None
        c["body"].append(_body_text(body))
        if self.normalizer is not None and event_name:
            self.normalizer.log(str(event_name), attrs, body, rec.trace_id, rec.span_id, when, service)
        c["service_name"].append(service)
        c["scope_name"].append(scope_name)
        c["scope_version"].append(scope_version)
        c["flags"].append(rec.flags)
        c["received_time"].append(received_ns // 1000)
        c[schema.PARTITION_COLUMN].append(_days(when))
        self.attrs.add(attrs)
        self.res_attrs.add(resource)


def _build(cols: dict[str, list[Any]], columns: tuple[schema.Column, ...], table: str,
           attrs: _MapColumn, res_attrs: _MapColumn) -> pa.Table:
    arrays: dict[str, pa.Array] = {}
    for column in columns:
        name = column.name
        if name == "attributes":
            arrays[name] = attrs.array()
        elif name == "resource_attributes":
            arrays[name] = res_attrs.array()
        elif column.type == schema.TS:
            arrays[name] = pa.array(cols[name], pa.int64()).cast(schema.TS)
        elif name == schema.PARTITION_COLUMN:
            arrays[name] = pa.array(cols[name], pa.int32()).cast(pa.date32())
        else:
            arrays[name] = pa.array(cols[name], column.type)
    return pa.table(arrays, schema=schema.arrow_schema(table))


class MetricBuilder(_RecordBuilder):
    """Accumulates metric data points (one row each) into one Arrow table."""

    TABLE = schema.METRIC_POINTS

    def __init__(self, decoder: AttributeDecoder) -> None:
        self._dec = decoder
        self._reset()

    def add_request(self, request: Any, received_ns: int) -> None:
        for rm in request.resource_metrics:
            resource = self._dec.to_dict(rm.resource.attributes)
            service, _env = _resource_identity(resource)
            for sm in rm.scope_metrics:
                scope = (sm.scope.name or None, sm.scope.version or None)
                for metric in sm.metrics:
                    self._add_metric(metric, resource, service, scope, received_ns)

    def _add_metric(self, metric: Any, resource: dict[str, Any], service: str | None,
                    scope: tuple[str | None, str | None], received_ns: int) -> None:
        kind = metric.WhichOneof("data")
        if kind is None:
            return
        data = getattr(metric, kind)
        temporality = None
        if hasattr(data, "aggregation_temporality"):
            code = data.aggregation_temporality
            temporality = TEMPORALITY[code] if 0 <= code < len(TEMPORALITY) else None
        for point in data.data_points:
            c = self.cols
            attrs = self._dec.to_dict(point.attributes)
            sent, start = point.time_unix_nano, point.start_time_unix_nano
            if sent > MAX_INT64 or start > MAX_INT64:
                sent = time_or_zero(sent, "time_unix_nano", attrs)
                start = time_or_zero(start, "start_time_unix_nano", attrs)
            if temporality is None and hasattr(data, "aggregation_temporality"):
                note_clamped(attrs, f"aggregation_temporality {data.aggregation_temporality} unknown, stored as "
                                    "UNSPECIFIED")
            when = sent or received_ns
            base = {"time": when // 1000, "time_unix_nano": sent,
                    "start_time_unix_nano": start, "name": metric.name,
                    "description": metric.description or None, "unit": metric.unit or None, "type": kind,
                    "is_monotonic": data.is_monotonic if kind == "sum" else None,
                    "aggregation_temporality": temporality or "UNSPECIFIED"
                    if hasattr(data, "aggregation_temporality") else None,
                    "service_name": service, "scope_name": scope[0], "scope_version": scope[1],
                    "flags": point.flags, "received_time": received_ns // 1000,
                    schema.PARTITION_COLUMN: _days(when)}
            base.update(_point_values(kind, point, attrs))
            for name in c:
                c[name].append(base.get(name))
            self.attrs.add(attrs)
            self.res_attrs.add(resource)



def _point_values(kind: str, p: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    """The value columns of one data point, by metric type (uint64 counts clamped to int64, noted in attrs)."""
    if kind in ("gauge", "sum"):
        return {"value": p.as_double if p.WhichOneof("value") == "as_double" else float(p.as_int)}
    if kind == "histogram":
        return {"count": clamp_count(p.count, "count", attrs), "sum": p.sum if p.HasField("sum") else None,
                "min": p.min if p.HasField("min") else None, "max": p.max if p.HasField("max") else None,
                "bucket_counts": clamp_counts(p.bucket_counts, "bucket_counts", attrs),
                "explicit_bounds": list(p.explicit_bounds)}
    if kind == "exponential_histogram":
        return {"count": clamp_count(p.count, "count", attrs), "sum": p.sum if p.HasField("sum") else None,
                "min": p.min if p.HasField("min") else None, "max": p.max if p.HasField("max") else None,
                "exp_scale": p.scale, "exp_zero_count": clamp_count(p.zero_count, "zero_count", attrs),
                "exp_positive_offset": p.positive.offset,
                "exp_positive_counts": clamp_counts(p.positive.bucket_counts, "positive.bucket_counts", attrs),
                "exp_negative_offset": p.negative.offset,
                "exp_negative_counts": clamp_counts(p.negative.bucket_counts, "negative.bucket_counts", attrs)}
    if kind == "summary":
        return {"count": clamp_count(p.count, "count", attrs), "sum": p.sum,
                "quantiles": [{"quantile": q.quantile, "value": q.value} for q in p.quantile_values]}
    return {}


