"""OTLP/JSON request bodies → the same protobuf messages the binary path produces.

OTLP/JSON differs from protobuf's canonical JSON in one way that matters: trace and span ids
are hex, not base64. Field names may be lowerCamelCase or snake_case, enums numbers (or names),
64-bit integers strings or numbers; protobuf's json_format accepts all of those. Unknown fields
are ignored, as the specification requires. Items that fail to convert are rejected one by one.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from google.protobuf import json_format
from spanlake.collector.errors import InvalidPayload
from spanlake.collector.otlp_proto import SIGNALS, ParseOutcome

_ID_KEYS = {"traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"}
# An id that is not valid hex becomes one byte long, so validation rejects its item.
_BAD_ID = base64.b64encode(b"\x00").decode()

_LEVEL_KEYS = {
    "traces": (("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"), ("spans",)),
    "logs": (("resourceLogs", "resource_logs"), ("scopeLogs", "scope_logs"), ("logRecords", "log_records")),
    "metrics": (("resourceMetrics", "resource_metrics"), ("scopeMetrics", "scope_metrics"), ("metrics",)),
}


def _hex_to_b64(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return base64.b64encode(binascii.unhexlify(value)).decode()
    except (binascii.Error, ValueError):
        return _BAD_ID


def _convert_ids(node: Any) -> None:
    """Rewrite hex id fields to base64 in place, wherever they occur (spans, links, logs, exemplars)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS:
                node[key] = _hex_to_b64(value)
            elif isinstance(value, (dict, list)):
                _convert_ids(value)
    elif isinstance(node, list):
        for item in node:
            _convert_ids(item)


def _get(d: dict[str, Any], names: tuple[str, ...]) -> list[Any]:
    for name in names:
        if name in d:
            value = d[name]
            return value if isinstance(value, list) else []
    return []


def _salvage_dict(signal: str, doc: dict[str, Any], outcome: ParseOutcome) -> None:
    """Convert item by item, so one bad span does not sink its neighbours."""
    types = SIGNALS[signal]
    res_keys, scope_keys, item_keys = _LEVEL_KEYS[signal]
    for res in _get(doc, res_keys):
        if not isinstance(res, dict):
            outcome.rejected += 1
            continue
        out_res = getattr(outcome.request, types.resource_list).add()
        shell = {k: v for k, v in res.items() if k not in scope_keys}
        _parse_into(shell, out_res, outcome, "resource")
        for scope in _get(res, scope_keys):
            if not isinstance(scope, dict):
                outcome.rejected += 1
                continue
            out_scope = getattr(out_res, types.scope_list).add()
            _parse_into({k: v for k, v in scope.items() if k not in item_keys}, out_scope, outcome, "scope")
            for item in _get(scope, item_keys):
                parsed = types.item()
                if _parse_into(item, parsed, outcome, "item"):
                    getattr(out_scope, types.item_list).append(parsed)
                else:
                    outcome.rejected += 1


def _parse_into(value: Any, msg: Any, outcome: ParseOutcome, what: str) -> bool:
    try:
        json_format.ParseDict(value, msg, ignore_unknown_fields=True)
        return True
    except (json_format.ParseError, TypeError, ValueError, AttributeError) as exc:
        msg.Clear()
        outcome.problems.append(f"{what}: {str(exc)[:200]}")
        return False


def parse_json(signal: str, body: bytes) -> ParseOutcome:
    """Parse an OTLP/JSON body; raises InvalidPayload when it is not JSON (or not an object)."""
    try:
        doc = json.loads(body) if body.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPayload(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidPayload("OTLP/JSON body must be a JSON object")
    _convert_ids(doc)
    outcome = ParseOutcome(SIGNALS[signal].request())
    try:
        json_format.ParseDict(doc, outcome.request, ignore_unknown_fields=True)
        return outcome
    except (json_format.ParseError, TypeError, ValueError, AttributeError):
        outcome.request.Clear()
    _salvage_dict(signal, doc, outcome)
    return outcome
