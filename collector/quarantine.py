"""Records the lake writer could not convert, set aside so they never block the records after them.

A WAL record that still fails after the writer retried it on its own (see writer_process) is kept
here with its error, and the shard commits past it. Each entry is two files under
``<data_dir>/quarantine/shard-<n>/``: ``<end position>.bin`` (the WAL payload, an OTLP protobuf
request) and ``<end position>.json`` (signal, error, times, status), written payload first, each
atomically and fsynced, so an entry that exists is complete. The (shard, WAL end position) key makes
setting aside idempotent: a writer restarted before its next commit finds the entry and skips the
record instead of converting it again, and nothing is counted twice.

``retry`` re-sends an entry's payload to the running collector's OTLP/HTTP receiver, which answers
as for any export; the entry is then marked ``retried`` (kept, so the old WAL record is never read
again). The re-sent request goes through the ordinary path: after a fix it lands in the lake, and if
it still fails it is quarantined again as a new entry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATUS_QUARANTINED = "quarantined"
STATUS_RETRIED = "retried"
OTLP_HTTP_PATHS = {"traces": "/v1/traces", "logs": "/v1/logs", "metrics": "/v1/metrics"}


@dataclass(frozen=True)
class QuarantineEntry:
    """What is known about one set-aside WAL record (its payload is read separately)."""

    id: str  # "<shard>-<end position>": what the CLI takes
    shard: int
    end_position: int
    signal: str
    received_ns: int
    quarantined_at: str
    error: str
    payload_bytes: int
    payload_sha256: str
    status: str = STATUS_QUARANTINED
    retried_at: str | None = None
    retry_answer: str | None = None


def payload_digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


class Quarantine:
    """The quarantine directory of one data dir: add, list, read and mark entries."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _shard_dir(self, shard: int) -> Path:
        return self.root / f"shard-{shard}"

    def put(self, shard: int, end_position: int, signal: str, received_ns: int, payload: bytes,
            error: str) -> QuarantineEntry:
        """Keep a record durably (payload, then its description); overwrites the same key's entry."""
        shard_dir = self._shard_dir(shard)
        shard_dir.mkdir(parents=True, exist_ok=True)
        entry = QuarantineEntry(f"{shard}-{end_position}", shard, end_position, signal, received_ns, _now(),
                                error[:4000], len(payload), payload_digest(payload))
        _write_durably(shard_dir / f"{end_position}.bin", payload)
        _write_durably(shard_dir / f"{end_position}.json", json.dumps(asdict(entry), indent=1).encode())
        fd = os.open(shard_dir, os.O_RDONLY)
        try:
            os.fsync(fd)  # the renames themselves must survive a crash before the writer commits past them
        finally:
            os.close(fd)
        return entry

    def positions(self, shard: int) -> dict[int, str]:
        """WAL end position → payload digest of every entry of a shard (what its writer must skip)."""
        return {e.end_position: e.payload_sha256 for e in self._entries(self._shard_dir(shard))}

    def _entries(self, shard_dir: Path) -> list[QuarantineEntry]:
        if not shard_dir.is_dir():
            return []
        out = []
        for path in shard_dir.glob("*.json"):
            try:
                out.append(QuarantineEntry(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue  # a foreign or damaged file is not an entry
        return out

    def entries(self) -> list[QuarantineEntry]:
        """Every entry, oldest WAL position first within each shard."""
        if not self.root.is_dir():
            return []
        found = [e for d in sorted(self.root.glob("shard-*")) for e in self._entries(d)]
        return sorted(found, key=lambda e: (e.shard, e.end_position))

    def counts(self) -> Counter[str]:
        """Entries per signal (every record ever set aside that is still kept, retried or not)."""
        return Counter(e.signal for e in self.entries())

    def get(self, entry_id: str) -> QuarantineEntry:
        shard, _, position = entry_id.partition("-")
        path = self._shard_dir(int(shard)) / f"{int(position)}.json"
        try:
            return QuarantineEntry(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise KeyError(entry_id) from None

    def payload(self, entry: QuarantineEntry) -> bytes:
        return (self._shard_dir(entry.shard) / f"{entry.end_position}.bin").read_bytes()

    def mark_retried(self, entry: QuarantineEntry, answer: str) -> QuarantineEntry:
        updated = QuarantineEntry(**{**asdict(entry), "status": STATUS_RETRIED, "retried_at": _now(),
                                     "retry_answer": answer[:2000]})
        _write_durably(self._shard_dir(entry.shard) / f"{entry.end_position}.json",
                       json.dumps(asdict(updated), indent=1).encode())
        return updated


def resend(payload: bytes, signal: str, host: str, http_port: int, auth_token: str | None,
           timeout: float = 30.0) -> tuple[int, str]:
    """POST a quarantined payload to a collector's OTLP/HTTP receiver; (HTTP status, body or reason)."""
    headers = {"Content-Type": "application/x-protobuf"}
    if auth_token:
        headers["Authorization"] = f"Bearer {auth_token}"
    req = urllib.request.Request(f"http://{host}:{http_port}{OTLP_HTTP_PATHS[signal]}", data=payload,
                                 headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, _describe_answer(signal, resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:500].decode("utf-8", "replace")


def _describe_answer(signal: str, body: bytes) -> str:
    """The partial-success part of an export response, as text ('accepted' when there is none)."""
    from spanlake.collector.otlp_proto import SIGNALS

    try:
        response = SIGNALS[signal].response.FromString(body)
    except Exception:  # a foreign body is shown, not parsed
        return body[:200].decode("utf-8", "replace")
    if response.HasField("partial_success") and response.partial_success.error_message:
        return f"accepted with warning: {response.partial_success.error_message}"
    return "accepted"


def describe(entry: QuarantineEntry) -> dict[str, Any]:
    """An entry as a plain dict, for JSON output."""
    return asdict(entry)


def payload_text(signal: str, payload: bytes, limit: int = 20_000) -> str:
    """A quarantined payload for reading: OTLP/JSON when it parses, else why not and its first bytes in hex."""
    from google.protobuf import json_format
    from spanlake.collector.otlp_proto import SIGNALS

    try:
        text = json_format.MessageToJson(SIGNALS[signal].request.FromString(payload), indent=1)
    except Exception as exc:  # the reason it was set aside may be exactly this
        return f"(payload does not parse as an OTLP {signal} request: {exc})\n{payload[:256].hex()}"
    return text if len(text) <= limit else text[:limit] + f"\n… [{len(text) - limit} more characters]"
