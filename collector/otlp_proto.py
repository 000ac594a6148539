"""OTLP protobuf request parsing that keeps the good items of a partly bad request.

The fast path is one C-level ``ParseFromString``. When that fails, :func:`salvage` walks the wire
format level by level (resource → scope → span/log/metric) and parses each item on its own:
invalid UTF-8 is repaired with U+FFFD (through a twin message type whose strings are bytes), an
attribute that cannot be parsed (too deep, corrupt) is replaced by a marker, and only items that
still fail are rejected and counted. A resource or scope that cannot be parsed is dropped (its items
kept) and counted too. :func:`readable_payload` is what goes to the WAL: bytes the writer's strict
parse is known to read (a part that parses alone can still be too deep inside a whole request).
Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

DROPPED_VALUE_MARKER = "[spanlake: attribute value dropped: undecodable or nested too deep]"
DEPTH_CUT_MARKER = "[spanlake: nested deeper than the depth limit]"
# Nesting levels (kvlist/array) an AnyValue may keep in a stored request: each kvlist level costs the
# protobuf parser 3 message levels of its limit of 100, and a span attribute sits ~8 levels down.
MAX_STORED_VALUE_DEPTH = 24
# Resource- and scope-level wire fields holding attributes (Resource.attributes, InstrumentationScope.attributes).
_RESOURCE_ATTRIBUTES_FIELD = 1
_SCOPE_ATTRIBUTES_FIELD = 3


@dataclass(frozen=True)
class SignalTypes:
    """The protobuf classes of one OTLP signal, and where its items and their attributes sit."""

    request: type[Message]
    response: type[Message]
    resource_level: type[Message]
    scope_level: type[Message]
    item: type[Message]
    resource_list: str  # request field holding resource-level messages
    scope_list: str  # resource-level field holding scope-level messages
    item_list: str  # scope-level field holding the items
    item_attributes_field: int | None  # wire field number of the item's attributes, for per-attribute salvage


SIGNALS: dict[str, SignalTypes] = {
    "traces": SignalTypes(trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse,
                          trace_pb2.ResourceSpans, trace_pb2.ScopeSpans, trace_pb2.Span,
                          "resource_spans", "scope_spans", "spans", 9),
    "logs": SignalTypes(logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse,
                        logs_pb2.ResourceLogs, logs_pb2.ScopeLogs, logs_pb2.LogRecord,
                        "resource_logs", "scope_logs", "log_records", 6),
    "metrics": SignalTypes(metrics_service_pb2.ExportMetricsServiceRequest,
                           metrics_service_pb2.ExportMetricsServiceResponse,
                           metrics_pb2.ResourceMetrics, metrics_pb2.ScopeMetrics, metrics_pb2.Metric,
                           "resource_metrics", "scope_metrics", "metrics", None),
}


@dataclass
class ParseOutcome:
    """A parsed request plus what had to be repaired or dropped to get it."""

    request: Any
    rejected: int = 0
    repaired_strings: int = 0
    dropped_attributes: int = 0
    dropped_parts: int = 0  # resources/scopes that could not be parsed (their items are kept)
    depth_cuts: int = 0  # values nested too deep for the stored request, cut with a marker
    salvaged: bool = False  # the strict parse failed: the body as sent is not what may be stored
    problems: list[str] = field(default_factory=list)

    @property
    def modified(self) -> bool:
        """Whether the parsed request differs from the body as sent (then the body must not be stored)."""
        return bool(self.salvaged or self.rejected or self.repaired_strings or self.dropped_attributes
                    or self.dropped_parts or self.depth_cuts)


# --- wire format ---------------------------------------------------------------------------

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DecodeError("varint too long")


def iter_fields(buf: bytes, truncated_tail: bool = False) -> Iterator[tuple[int, int, int, int, int]]:
    """Yield (field number, wire type, raw start, value start, end) for each top-level field.

    With ``truncated_tail`` a last length-delimited field cut short is yielded with what is there
    (so the items inside it before the cut can still be recovered) instead of raising.
    """
    pos, n = 0, len(buf)
    while pos < n:
        start = pos
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        value_start = pos
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, value_start = _varint(buf, pos)
            pos = value_start + length
        elif wire == 5:
            pos += 4
        else:
            raise DecodeError(f"unsupported wire type {wire}")
        if number == 0:
            raise DecodeError("corrupt field number 0")
        if pos > n:
            if truncated_tail and wire == 2 and value_start <= n:
                yield number, wire, start, value_start, n
            raise DecodeError("truncated field")
        yield number, wire, start, value_start, pos


# --- lenient twins: the same messages with every string field typed as bytes ----------------

_PROTO_FILES = (common_pb2, resource_pb2, trace_pb2, logs_pb2, metrics_pb2)
_LENIENT_PREFIX = "spanlake_lenient."
_STRING_FIELDS: set[tuple[str, str]] = set()


def _build_lenient_pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for module in _PROTO_FILES:
        fdp = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(fdp)
        fdp.name = "lenient/" + fdp.name
        fdp.dependency[:] = ["lenient/" + d for d in fdp.dependency]
        fdp.package = _LENIENT_PREFIX + fdp.package
        fdp.options.Clear()
        stack = list(fdp.message_type)
        while stack:
            msg = stack.pop()
            stack.extend(msg.nested_type)
            for fld in msg.field:
                if fld.type == fld.TYPE_STRING:
                    fld.type = fld.TYPE_BYTES
                    _STRING_FIELDS.add((msg.name, fld.name))
                if fld.type_name.startswith(".opentelemetry.proto."):
                    fld.type_name = "." + _LENIENT_PREFIX + fld.type_name[1:]
        pool.Add(fdp)
    return pool


_LENIENT_POOL = _build_lenient_pool()


def _lenient_class(strict: type[Message]) -> type[Message]:
    desc = _LENIENT_POOL.FindMessageTypeByName(_LENIENT_PREFIX + strict.DESCRIPTOR.full_name)
    return message_factory.GetMessageClass(desc)


def _repair_utf8(msg: Message) -> int:
    """Replace invalid UTF-8 in (lenient) string fields with U+FFFD, in place. Returns repairs made."""
    repaired = 0
    for fd, value in msg.ListFields():
        if fd.message_type is not None:
            children = value if _is_repeated(fd) else [value]
            for child in children:
                repaired += _repair_utf8(child)
        elif (msg.DESCRIPTOR.name, fd.name) in _STRING_FIELDS and not _is_repeated(fd):
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                setattr(msg, fd.name, value.decode("utf-8", "replace").encode("utf-8"))
                repaired += 1
    return repaired


def _is_repeated(fd: Any) -> bool:
    return bool(fd.is_repeated) if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED


def _parse_tolerant(cls: type[Message], data: bytes, outcome: ParseOutcome) -> Message | None:
    """Strict parse, else lenient parse + UTF-8 repair; None when neither works."""
    try:
        return cls.FromString(data)
    except DecodeError:
        pass
    try:
        lenient = _lenient_class(cls).FromString(data)
    except DecodeError:
        return None
    outcome.repaired_strings += _repair_utf8(lenient)
    try:
        return cls.FromString(lenient.SerializeToString())
    except DecodeError:
        return None


def _replace_bad_attributes(data: bytes, attr_field: int, outcome: ParseOutcome) -> bytes:
    """Rebuild an item's bytes with each unparsable attribute swapped for a marker string (and values
    nested too deep for a stored request cut)."""
    out = bytearray()
    for number, wire, start, vstart, end in iter_fields(data):
        if number == attr_field and wire == 2:
            kv_bytes = data[vstart:end]
            kv = _parse_tolerant(common_pb2.KeyValue, kv_bytes, outcome)
            if kv is not None:  # parses alone, may still be too deep inside its message: cut it
                cuts = outcome.depth_cuts
                _cut_any_value(kv.value, 0, outcome)
                if outcome.depth_cuts != cuts:
                    payload = kv.SerializeToString()
                    out += bytes([(attr_field << 3) | 2]) + _encode_varint(len(payload)) + payload
                    continue
            if kv is None:
                key = _salvage_key(kv_bytes)
                marker = common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=DROPPED_VALUE_MARKER))
                payload = marker.SerializeToString()
                out += bytes([(attr_field << 3) | 2]) + _encode_varint(len(payload)) + payload
                outcome.dropped_attributes += 1
                continue
        out += data[start:end]
    return bytes(out)


def _salvage_key(kv_bytes: bytes) -> str:
    try:
        for number, wire, _s, vstart, end in iter_fields(kv_bytes):
            if number == 1 and wire == 2:
                return kv_bytes[vstart:end].decode("utf-8", "replace")
    except DecodeError:
        pass
    return "spanlake.unreadable_key"


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _salvage_part(cls: type[Message], data: bytes, attr_field: int | None, outcome: ParseOutcome) -> Message | None:
    """A message parsed tolerantly, else with its unparsable attributes swapped for markers; None if neither."""
    part = _parse_tolerant(cls, data, outcome)
    if part is None and attr_field is not None:
        try:
            rebuilt = _replace_bad_attributes(data, attr_field, outcome)
        except DecodeError:
            return None
        part = _parse_tolerant(cls, rebuilt, outcome)
    return part


def _salvage_item(types: SignalTypes, data: bytes, outcome: ParseOutcome) -> Message | None:
    return _salvage_part(types.item, data, types.item_attributes_field, outcome)


def _utf8(chunk: bytes, outcome: ParseOutcome) -> str:
    """A string field's bytes as text; invalid UTF-8 is repaired with U+FFFD and counted."""
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError:
        outcome.repaired_strings += 1
        return chunk.decode("utf-8", "replace")


def _salvage_scope(types: SignalTypes, data: bytes, out: Any, outcome: ParseOutcome) -> None:
    try:
        _salvage_scope_fields(types, data, out, outcome)
    except DecodeError as exc:
        outcome.problems.append(f"scope cut short or corrupt ({exc})")


def _salvage_scope_fields(types: SignalTypes, data: bytes, out: Any, outcome: ParseOutcome) -> None:
    for number, wire, _s, vstart, end in iter_fields(data, truncated_tail=True):
        chunk = data[vstart:end]
        if number == 1 and wire == 2:
            scope = _salvage_part(common_pb2.InstrumentationScope, chunk, _SCOPE_ATTRIBUTES_FIELD, outcome)
            if scope is not None:
                out.scope.CopyFrom(scope)
            else:
                outcome.dropped_parts += 1
                outcome.problems.append("undecodable instrumentation scope dropped (its items kept)")
        elif number == 2 and wire == 2:
            item = _salvage_item(types, chunk, outcome)
            if item is None:
                outcome.rejected += 1
            else:
                getattr(out, types.item_list).append(item)
        elif number == 3 and wire == 2:
            out.schema_url = _utf8(chunk, outcome)


def _salvage_resource(types: SignalTypes, data: bytes, out: Any, outcome: ParseOutcome) -> None:
    try:
        _salvage_resource_fields(types, data, out, outcome)
    except DecodeError as exc:
        outcome.problems.append(f"resource cut short or corrupt ({exc})")


def _salvage_resource_fields(types: SignalTypes, data: bytes, out: Any, outcome: ParseOutcome) -> None:
    for number, wire, _s, vstart, end in iter_fields(data, truncated_tail=True):
        chunk = data[vstart:end]
        if number == 1 and wire == 2:
            resource = _salvage_part(resource_pb2.Resource, chunk, _RESOURCE_ATTRIBUTES_FIELD, outcome)
            if resource is not None:
                out.resource.CopyFrom(resource)
            else:
                outcome.dropped_parts += 1
                outcome.problems.append("undecodable resource dropped (its items kept)")
        elif number == 2 and wire == 2:
            scope_level = getattr(out, types.scope_list).add()
            try:
                parsed = types.scope_level.FromString(chunk)
                scope_level.CopyFrom(parsed)
            except DecodeError:
                _salvage_scope(types, chunk, scope_level, outcome)
        elif number == 3 and wire == 2:
            out.schema_url = _utf8(chunk, outcome)


def salvage(signal: str, body: bytes) -> ParseOutcome:
    """Parse what can be parsed of a request whose strict parse failed."""
    types = SIGNALS[signal]
    outcome = ParseOutcome(types.request(), salvaged=True)
    try:
        for number, wire, _s, vstart, end in iter_fields(body, truncated_tail=True):
            if number != 1 or wire != 2:
                continue
            chunk = body[vstart:end]
            resource_level = getattr(outcome.request, types.resource_list).add()
            try:
                resource_level.CopyFrom(types.resource_level.FromString(chunk))
            except DecodeError:
                _salvage_resource(types, chunk, resource_level, outcome)
    except DecodeError as exc:
        outcome.problems.append(f"request cut short or corrupt after the recovered items ({exc})")
    if outcome.problems and not outcome.rejected and outcome.dropped_parts < len(outcome.problems):
        outcome.rejected = 1  # something was lost; how many items it held cannot be known
    return outcome


def parse_protobuf(signal: str, body: bytes) -> ParseOutcome:
    """Parse an Export*ServiceRequest body, salvaging the good items of a bad one."""
    try:
        return ParseOutcome(SIGNALS[signal].request.FromString(body))
    except DecodeError:
        return salvage(signal, body)


# --- what may be stored ----------------------------------------------------------------------

def _cut_deep_values(msg: Message, outcome: ParseOutcome) -> None:
    """Replace every AnyValue nested deeper than MAX_STORED_VALUE_DEPTH by a marker string, in place."""
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        for child in (value if _is_repeated(fd) else [value]):
            if child.DESCRIPTOR is common_pb2.AnyValue.DESCRIPTOR:
                _cut_any_value(child, 0, outcome)
            else:
                _cut_deep_values(child, outcome)


def _cut_any_value(value: Any, depth: int, outcome: ParseOutcome) -> None:
    kind = value.WhichOneof("value")
    if kind not in ("array_value", "kvlist_value"):
        return
    if depth >= MAX_STORED_VALUE_DEPTH:
        value.string_value = DEPTH_CUT_MARKER
        outcome.depth_cuts += 1
        return
    if kind == "array_value":
        for child in value.array_value.values:
            _cut_any_value(child, depth + 1, outcome)
    else:
        for kv in value.kvlist_value.values:
            _cut_any_value(kv.value, depth + 1, outcome)


def readable_payload(signal: str, outcome: ParseOutcome) -> bytes:
    """The parsed request serialised so that the writer's strict parse reads it back.

    Only called when the body as sent cannot be stored (salvaged, repaired or JSON). Values nested
    too deep for a whole request are cut (and counted); raises DecodeError if it still does not parse.
    """
    request_type = SIGNALS[signal].request
    payload = outcome.request.SerializeToString()
    try:
        request_type.FromString(payload)
        return payload
    except DecodeError:
        pass
    _cut_deep_values(outcome.request, outcome)
    payload = outcome.request.SerializeToString()
    request_type.FromString(payload)  # raises if even that is not enough
    return payload
