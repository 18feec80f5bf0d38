"""What a local web interface is started with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from relay.client.kdf import PRODUCTION_KDF, Kdf

Kind = Literal["desk", "kiosk", "app"]

# Idle time before the person's key is wiped: the kiosk is shared, the desk is an office.
DEFAULT_IDLE_SECONDS: dict[Kind, int] = {"desk": 15 * 60, "kiosk": 5 * 60, "app": 15 * 60}


@dataclass(frozen=True)
class WebConfig:
    kind: Kind
    profile_dir: Path
    port: int = 0
    lang: str = "en"
    idle_seconds: int = 0  # 0: the default for the kind
    kdf: Kdf = PRODUCTION_KDF  # tests pass TEST_KDF (cheap key derivation)
    queue_poll_seconds: int = 20

    @property
    def idle(self) -> int:
        return self.idle_seconds or DEFAULT_IDLE_SECONDS[self.kind]
