"""The error class and HTTP status of a failed GenAI span, from whatever the emitter left: ``error.type``,
an ``exception`` event, the status message, or the SDK's ``Error code: 429 - ...`` text."""

from __future__ import annotations

import re
from typing import Any

from spanlake.collector.genai_map import error_class, sdk_error_class
from spanlake.instrumentation import semconv as sc

_HTTP_CODE_IN_MESSAGE = re.compile(r"Error code: (\d{3})\b")  # openai/anthropic SDK APIStatusError text
_ERROR_CLASS_IN_MESSAGE = re.compile(r"^(\w+(?:Error|Exception)): ")


def error_details(error_type: str | None, http_status: int | None, message: str,
                  events: list[dict[str, Any]] | None) -> tuple[str | None, int | None]:
    """Error class (exception event, status message) and HTTP status (SDK error text) of a failed span."""
    exceptions = [e for e in events or () if e["name"] == sc.EXCEPTION_EVENT]
    if error_type is None:
        for event in exceptions:
            found = next((v for k, v in event["attributes"] if k == sc.EXCEPTION_TYPE), "")
            if found:
                error_type = error_class(found)
                break
    if error_type is None:
        match = _ERROR_CLASS_IN_MESSAGE.match(message)
        if match:
            error_type = match.group(1)
    sdk_text = _HTTP_CODE_IN_MESSAGE.search(message)
    if http_status is None:
        match = sdk_text
        for event in exceptions if match is None else ():
            for _key, value in event["attributes"]:
                match = match or _HTTP_CODE_IN_MESSAGE.search(value)
        if match:
            http_status = int(match.group(1))
    if error_type is None and sdk_text is not None:  # the SDK's own text: its class follows from the status
        error_type = sdk_error_class(int(sdk_text.group(1)))
    return error_type, http_status
