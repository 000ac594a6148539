"""Write-ahead log: an acknowledged export is on disk (fsync'd) before the receiver answers.

Receivers append raw OTLP protobuf payloads; concurrent appends share one fsync (group commit:
whoever takes the sync lock syncs everything written so far). The lake writer process tails the
segments and records how far it got inside each Delta commit (see lake_writer), so a restart
replays exactly what is not yet in the lake. A position is ``(segment << 40) | offset``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

HEADER = struct.Struct("<IIBQ")  # payload length, crc32(payload), signal code, receive time (ns)
SEGMENT_SHIFT = 40
SIGNAL_CODES = {"traces": 1, "logs": 2, "metrics": 3}
SIGNAL_NAMES = {v: k for k, v in SIGNAL_CODES.items()}


def try_lock(path: Path) -> int | None:
    """Take an exclusive flock on ``path`` without waiting: the descriptor (keep it open to hold the
    lock), or None when another process holds it. The kernel drops the lock when its holder dies,
    however it dies, so a crash never leaves a stale lock behind."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def make_position(segment: int, offset: int) -> int:
    return (segment << SEGMENT_SHIFT) | offset


def split_position(position: int) -> tuple[int, int]:
    return position >> SEGMENT_SHIFT, position & ((1 << SEGMENT_SHIFT) - 1)


def segment_path(wal_dir: Path, segment: int) -> Path:
    return wal_dir / f"{segment:012d}.wal"


def list_segments(wal_dir: Path) -> list[int]:
    return sorted(int(p.stem) for p in wal_dir.glob("*.wal") if p.stem.isdigit())


@dataclass(frozen=True)
class Record:
    """One WAL entry: where it ends (the position to resume after it), its signal and payload."""

    end_position: int
    signal: str
    received_ns: int
    payload: bytes


def _valid_prefix(path: Path) -> int:
    """Length of the longest run of whole, checksummed frames at the start of a segment."""
    good = 0
    with path.open("rb") as fh:
        data = fh.read()
    while good + HEADER.size <= len(data):
        length, crc, _sig, _ts = HEADER.unpack_from(data, good)
        end = good + HEADER.size + length
        if end > len(data) or zlib.crc32(data[good + HEADER.size:end]) != crc:
            break
        good = end
    return good


class WriteAheadLog:
    """Appending side of the WAL, shared by all receiver threads of one collector process."""

    def __init__(self, wal_dir: Path, segment_bytes: int, fsync: bool = True) -> None:
        self.dir = wal_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._written = 0  # count of frames written
        self._synced = 0  # count of frames known durable
        self._repair_tail()
        existing = list_segments(self.dir)
        # Always start a fresh segment: the old tail may have been torn by a crash.
        self._segment = (existing[-1] + 1) if existing else 1
        self._fd = self._open_segment(self._segment)
        self._offset = 0
        self.bytes_appended = 0

    def _repair_tail(self) -> None:
        """Cut a torn last frame left by a crash; it was never acknowledged."""
        segments = list_segments(self.dir)
        if not segments:
            return
        path = segment_path(self.dir, segments[-1])
        good = _valid_prefix(path)
        if good < path.stat().st_size:
            logger.warning("wal: truncating torn tail of %s at %d of %d bytes", path.name, good, path.stat().st_size)
            with path.open("r+b") as fh:
                fh.truncate(good)
                os.fsync(fh.fileno())

    def _open_segment(self, segment: int) -> int:
        fd = os.open(segment_path(self.dir, segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new file's name must survive a crash too
        finally:
            os.close(dir_fd)
        return fd

    @property
    def position(self) -> int:
        """Position just after the last appended frame."""
        return make_position(self._segment, self._offset)

    def append(self, signal: str, payload: bytes, received_ns: int) -> int:
        """Append one payload and return once it is durable. Returns its end position."""
        frame = HEADER.pack(len(payload), zlib.crc32(payload), SIGNAL_CODES[signal], received_ns) + payload
        with self._lock:
            if self._offset and self._offset + len(frame) > self._segment_bytes:
                self._roll()
            os.write(self._fd, frame)
            self._offset += len(frame)
            self.bytes_appended += len(frame)
            self._written += 1
            ticket = self._written
            end = self.position
        if self._fsync:
            self._sync_through(ticket)
        return end

    def _sync_through(self, ticket: int) -> None:
        with self._sync_lock:
            if self._synced >= ticket:
                return  # another thread's fsync already covered this frame
            with self._lock:
                target = self._written
                current = os.dup(self._fd)  # a roll may close self._fd while we sync
            try:
                # If the segment rolled after our write, _roll already fsynced the old one.
                os.fsync(current)
            finally:
                os.close(current)
            self._synced = target

    def _roll(self) -> None:
        """Seal the current segment (fsync, close) and start the next. Called under _lock."""
        os.fsync(self._fd)
        os.close(self._fd)
        self._segment += 1
        self._fd = self._open_segment(self._segment)
        self._offset = 0

    def close(self) -> None:
        with self._lock:
            os.fsync(self._fd)
            os.close(self._fd)


class WalReader:
    """Tailing side: yields whole frames after a position, across segments, as they appear."""

    def __init__(self, wal_dir: Path, start: int) -> None:
        self.dir = wal_dir
        self._segment, self._offset = split_position(start)
        self._buffer = b""

    def read_available(self, max_bytes: int = 32 * 1024 * 1024) -> Iterator[Record]:
        """Yield the frames present now (up to about max_bytes), then stop."""
        produced = 0
        while produced < max_bytes:
            segments = [s for s in list_segments(self.dir) if s >= self._segment]
            if not segments:
                return
            if segments[0] > self._segment:
                self._segment, self._offset = segments[0], 0
            path = segment_path(self.dir, self._segment)
            records = list(self._read_segment(path, max_bytes - produced))
            for rec in records:
                produced += len(rec.payload) + HEADER.size
                yield rec
            if records:
                continue
            later = [s for s in segments if s > self._segment]
            if not later:
                return
            # A later segment exists, so this one is sealed; re-check it once, then move on.
            again = list(self._read_segment(path, max_bytes - produced))
            for rec in again:
                produced += len(rec.payload) + HEADER.size
                yield rec
            if not again:
                size = path.stat().st_size if path.exists() else 0
                if self._offset < size:
                    logger.warning("wal: skipping %d unreadable bytes at the end of %s", size - self._offset, path.name)
                self._segment, self._offset = later[0], 0

    def _read_segment(self, path: Path, max_bytes: int) -> Iterator[Record]:
        try:
            with path.open("rb") as fh:
                fh.seek(self._offset)
                data = fh.read(max(max_bytes, HEADER.size))
                # Make sure a frame larger than max_bytes can still be read whole.
                if len(data) >= HEADER.size:
                    length = HEADER.unpack_from(data, 0)[0]
                    if HEADER.size + length > len(data):
                        data += fh.read(HEADER.size + length - len(data))
        except FileNotFoundError:
            return
        pos = 0
        while pos + HEADER.size <= len(data):
            length, crc, sig, ts = HEADER.unpack_from(data, pos)
            end = pos + HEADER.size + length
            if end > len(data):
                break  # partially written frame: wait for the rest
            payload = data[pos + HEADER.size:end]
            if zlib.crc32(payload) != crc:
                break  # torn tail; the appender repairs it on restart
            pos = end
            self._offset += HEADER.size + length
            yield Record(make_position(self._segment, self._offset), SIGNAL_NAMES.get(sig, "traces"), ts, payload)


def delete_segments_before(wal_dir: Path, position: int) -> int:
    """Remove segments wholly before ``position`` (already in the lake). Returns how many."""
    keep_from, _ = split_position(position)
    removed = 0
    for seg in list_segments(wal_dir):
        if seg < keep_from:
            segment_path(wal_dir, seg).unlink(missing_ok=True)
            removed += 1
    return removed
