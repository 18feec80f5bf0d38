"""The clock is passed in (an AppKey), never read from a global, so tests can move time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    """RFC 3339 with whole seconds, the form used inside signed documents."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
