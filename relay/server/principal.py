"""Who is asking: an approved device, and (for most routes) a person's session on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from storage.rows import Actor


@dataclass(frozen=True)
class Principal:
    device: dict[str, Any]
    person: dict[str, Any] | None = None
    session_id: str | None = None

    @property
    def device_id(self) -> str:
        return str(self.device["id"])

    @property
    def device_kind(self) -> str:
        return str(self.device["kind"])

    @property
    def person_id(self) -> str:
        if self.person is None:
            raise RuntimeError("no session")  # guarded by the route's requirements
        return str(self.person["id"])

    @property
    def role(self) -> str | None:
        return None if self.person is None else str(self.person["role"])

    @property
    def actor(self) -> Actor:
        return Actor(person=None if self.person is None else self.person["id"], device=self.device["id"])
