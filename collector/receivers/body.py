"""Request-body checks shared by the receivers: content type, encoding, size caps."""

from __future__ import annotations

import zlib

from spanlake.collector.errors import InvalidPayload, PayloadTooLarge, UnsupportedMediaType

CONTENT_TYPES = {"application/x-protobuf": "protobuf", "application/protobuf": "protobuf",
                 "application/json": "json"}


def body_format(content_type: str | None) -> str:
    """'protobuf' or 'json' for a Content-Type header; raises UnsupportedMediaType otherwise."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    fmt = CONTENT_TYPES.get(media)
    if fmt is None:
        raise UnsupportedMediaType(
            f"unsupported content type {media or '(none)'!r}: use application/x-protobuf or application/json")
    return fmt


def decompress(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo Content-Encoding (gzip, deflate, identity) without ever inflating past ``limit`` bytes."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity", "none"):
        return raw
    if enc in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif enc == "deflate":
        wbits = zlib.MAX_WBITS if raw[:1] == b"\x78" else -zlib.MAX_WBITS  # zlib-wrapped or raw deflate
    else:
        raise UnsupportedMediaType(f"unsupported content encoding {enc!r}: use gzip, deflate or identity")
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(raw, limit + 1)  # max_length caps the output: a gzip bomb stops here
    except zlib.error as exc:
        raise InvalidPayload(f"body is not valid {enc}: {exc}") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"decompressed body exceeds the {limit}-byte limit")
    if not inflater.eof:
        raise InvalidPayload(f"{enc} body is truncated")
    return out
