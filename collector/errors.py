"""Errors a receiver maps to an OTLP answer. Each carries what the client is told.

    RequestError
    ├── InvalidPayload        400 / INVALID_ARGUMENT (undecodable body, truncated gzip)
    ├── PayloadTooLarge       413 / RESOURCE_EXHAUSTED (body or decompressed body over the cap)
    ├── UnsupportedMediaType  415 / INVALID_ARGUMENT (unknown content type or encoding)
    ├── Unauthenticated       401 / UNAUTHENTICATED (bearer token missing or wrong)
    └── Overloaded            503 + Retry-After / RESOURCE_EXHAUSTED + RetryInfo (backlog full)
"""

from __future__ import annotations


class RequestError(Exception):
    """A request the collector cannot take as it is; the message goes back to the client."""

    http_status = 400


class InvalidPayload(RequestError):
    http_status = 400


class PayloadTooLarge(RequestError):
    http_status = 413


class UnsupportedMediaType(RequestError):
    http_status = 415


class Unauthenticated(RequestError):
    http_status = 401


class Overloaded(RequestError):
    http_status = 503

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
