"""Time windows: the half-open UTC interval every analytic is asked about, and its partition days.

Analytics never read the wall clock; callers pass ``now`` and build windows here, so the same
function gives the same answer in a test, a job and a report.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

UTC = dt.timezone.utc
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` as an aware UTC datetime (naive values are taken to be UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_duration(text: str | float | dt.timedelta) -> dt.timedelta:
    """'30m', '24h', '7d', '2w' or a number of seconds → timedelta (config files and CLI flags use these)."""
    if isinstance(text, dt.timedelta):
        return text
    if isinstance(text, (int, float)):
        return dt.timedelta(seconds=float(text))
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 24h, 7d)")
    return dt.timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class Window:
    """A half-open UTC interval [start, end)."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", utc(self.start))
        object.__setattr__(self, "end", utc(self.end))
        if self.end <= self.start:
            raise ValueError(f"empty window: {self.start} .. {self.end}")

    @classmethod
    def last(cls, duration: str | dt.timedelta, now: dt.datetime) -> Window:
        """The ``duration`` before ``now``."""
        return cls(utc(now) - parse_duration(duration), utc(now))

    @property
    def duration(self) -> dt.timedelta:
        return self.end - self.start

    @property
    def first_day(self) -> dt.date:
        return self.start.date()

    @property
    def last_day(self) -> dt.date:
        """The UTC day of the window's last microsecond (the partition range is inclusive)."""
        return (self.end - dt.timedelta(microseconds=1)).date()

    def before(self, duration: str | dt.timedelta | None = None) -> Window:
        """The window of ``duration`` (default: the same length) that ends where this one starts."""
        length = parse_duration(duration) if duration is not None else self.duration
        return Window(self.start - length, self.start)

    def extend_back(self, duration: str | dt.timedelta) -> Window:
        """This window with ``duration`` of history in front (anomaly baselines need it)."""
        return Window(self.start - parse_duration(duration), self.end)

    def label(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} .. {self.end:%Y-%m-%d %H:%M} UTC"


def floor_time(moment: dt.datetime, step: dt.timedelta) -> dt.datetime:
    """``moment`` rounded down to a multiple of ``step`` since the epoch (bucket boundaries)."""
    epoch = dt.datetime(1970, 1, 1, tzinfo=UTC)
    step_us = step // dt.timedelta(microseconds=1)
    offset = (utc(moment) - epoch) // dt.timedelta(microseconds=1)
    return epoch + dt.timedelta(microseconds=offset - offset % step_us)
