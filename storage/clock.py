"""Time as the storage layer writes it: RFC 3339 UTC text that sorts correctly as text."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    """``2026-11-21T19:27:28.123456Z``: fixed width, so text order is time order."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware UTC time")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: str) -> datetime:
    """The inverse of :func:`iso` (``fromisoformat`` is C: a purge parses hundreds of thousands)."""
    if len(text) != 27 or not text.endswith("Z"):
        raise ValueError(f"not a stored time: {text!r}")
    return datetime.fromisoformat(text)
