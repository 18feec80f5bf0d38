"""The person whose key is unlocked here, for one session, and everything decrypted for them.

Nothing in this object ever reaches the disk. :meth:`Unlocked.lock` signs out at the relay,
wipes the key and drops every decrypted letter and video, at sign-out, at the idle timeout and
when the interface stops.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from relay.client.sdk import Client


@dataclass
class Plain:
    """A decrypted item held in memory: bytes, type, and what it was decrypted from."""

    data: bytes
    content_type: str
    item_id: str


@dataclass
class Job:
    """Work that takes a while (a download, a sanitizing transcode, an upload), with its progress."""

    id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    kind: str = ""
    item_id: str = ""
    done: float = 0.0
    total: float = 0.0
    state: str = "running"  # running, paused, finished, failed
    error: str | None = None
    result: Any = None
    task: asyncio.Task[Any] | None = None
    pause_requested: bool = False

    def progress(self, done: float, total: float) -> None:
        self.done, self.total = done, total

    def public(self) -> dict[str, Any]:
        percent = round(100 * self.done / self.total) if self.total else (100 if self.state == "finished" else 0)
        return {"id": self.id, "kind": self.kind, "state": self.state, "percent": percent, "error": self.error}


@dataclass
class Unsent:
    """A participant's letter that was not sent (refused, or the relay out of reach): kept in memory
    so that the writing is not lost, and shown again with why."""

    to: str
    text: str
    error: str


@dataclass
class Unlocked:
    client: Client
    person: dict[str, Any]  # GET /v1/me's person: id, role, relation, label
    cases: list[dict[str, Any]]
    last_active: float = field(default_factory=time.monotonic)
    plain: dict[str, Plain] = field(default_factory=dict)  # media token -> decrypted content
    drafts: dict[str, tuple[str, str]] = field(default_factory=dict)  # draft id -> (item id, redacted letter)
    unsent: dict[str, Unsent] = field(default_factory=dict)  # a letter the relay did not take, kept to retry
    jobs: dict[str, Job] = field(default_factory=dict)
    media_for: dict[str, dict[str, str]] = field(default_factory=dict)  # item -> {original|sanitized: token}
    seen_queue: set[str] = field(default_factory=set)

    @property
    def person_id(self) -> str:
        return str(self.person["id"])

    def touch(self) -> None:
        self.last_active = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_active

    def keep_unsent(self, to: str, text: str, error: str) -> str:
        """Keep writing the relay did not take (a few at most), for the form to show again."""
        for old in list(self.unsent)[:-4]:
            self.unsent.pop(old, None)
        key = secrets.token_urlsafe(12)
        self.unsent[key] = Unsent(to=to, text=text, error=error)
        return key

    def keep(self, plain: Plain) -> str:
        token = secrets.token_urlsafe(16)
        self.plain[token] = plain
        return token

    async def lock(self) -> None:
        for job in self.jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
        self.jobs.clear()
        self.plain.clear()
        self.media_for.clear()
        self.drafts.clear()
        self.unsent.clear()
        if self.client.identity is not None:
            self.client.identity.wipe()  # first: signing out over the network may take a while
        await self.client.close()  # signs out at the relay, wipes a key unlocked at a kiosk
