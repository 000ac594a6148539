"""Request-body checks shared by the receivers: content type, encoding, size caps."""

from __future__ import annotations

import zlib

from spanlake.collector.errors import InvalidPayload, PayloadTooLarge, UnsupportedMediaType

CONTENT_TYPES = {"application/x-protobuf": "protobuf", "application/protobuf": "protobuf",
                 "application/json": "json"}
GZIP = ("gzip", "x-gzip")
IDENTITY = ("", "identity", "none")
GZIP_MAGIC = b"\x1f\x8b"


def body_format(content_type: str | None) -> str:
    """'protobuf' or 'json' for a Content-Type header; raises UnsupportedMediaType otherwise."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    fmt = CONTENT_TYPES.get(media)
    if fmt is None:
        raise UnsupportedMediaType(
            f"unsupported content type {media or '(none)'!r}: use application/x-protobuf or application/json")
    return fmt


def content_encoding(encoding: str | None) -> str:
    """The normalised Content-Encoding; raises UnsupportedMediaType for one we cannot undo (before the body
    is read, so a refused request costs no upload)."""
    enc = (encoding or "identity").strip().lower()
    if enc in IDENTITY:
        return "identity"
    if enc in GZIP or enc == "deflate":
        return enc
    raise UnsupportedMediaType(f"unsupported content encoding {enc!r}: use gzip, deflate or identity")


def decompress(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo Content-Encoding (gzip, deflate, identity) without ever inflating past ``limit`` bytes.

    gzip follows RFC 1952: a body may hold several members, inflated and joined in order (as gzip -d
    does); anything after the last member that is not another member is refused, not ignored.
    """
    enc = content_encoding(encoding)
    if enc == "identity":
        if len(raw) > limit:
            raise PayloadTooLarge(f"body of {len(raw)} bytes exceeds the {limit}-byte limit")
        return raw
    if enc in GZIP:
        return _inflate_members(raw, 16 + zlib.MAX_WBITS, enc, limit)
    wbits = zlib.MAX_WBITS if raw[:1] == b"\x78" else -zlib.MAX_WBITS  # zlib-wrapped or raw deflate
    out, rest = _inflate_one(raw, wbits, enc, limit, limit)
    if rest:
        raise InvalidPayload(f"{len(rest)} bytes of trailing data after the {enc} stream")
    return out


def _inflate_members(raw: bytes, wbits: int, enc: str, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    rest = raw
    while True:
        out, rest = _inflate_one(rest, wbits, enc, limit - total, limit)
        parts.append(out)
        total += len(out)
        if not rest:
            return b"".join(parts)
        if not rest.startswith(GZIP_MAGIC):
            raise InvalidPayload(f"{len(rest)} bytes of trailing data after the last gzip member")


def _inflate_one(raw: bytes, wbits: int, enc: str, room: int, limit: int) -> tuple[bytes, bytes]:
    """One compressed stream → (its output, the input after it); at most ``room`` bytes of output."""
    inflater = zlib.decompressobj(wbits)
    parts: list[bytes] = []
    total = 0
    data = raw
    try:
        while True:
            out = inflater.decompress(data, room - total + 1)  # max_length caps the output: a bomb stops here
            parts.append(out)
            total += len(out)
            if total > room:
                raise PayloadTooLarge(f"decompressed body exceeds the {limit}-byte limit")
            data = inflater.unconsumed_tail
            if inflater.eof or not data:
                break
    except zlib.error as exc:
        raise InvalidPayload(f"body is not valid {enc}: {exc}") from None
    if not inflater.eof:
        raise InvalidPayload(f"{enc} body is truncated")
    return b"".join(parts), inflater.unused_data
