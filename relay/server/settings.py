"""Server settings: one validated model, built from the command line and the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Settings an operator may give in the environment (a container's usual way) when the command
# line does not: the field, then its variable. Values are validated like any other.
ENVIRONMENT = {
    "disk_reserve_mb": "RELAY_DISK_RESERVE_MB",
    "header_timeout_seconds": "RELAY_HEADER_TIMEOUT",
    "body_idle_seconds": "RELAY_BODY_IDLE_TIMEOUT",
}


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path
    host: str = "127.0.0.1"
    # Who may read /metrics: the bearer of this token; unset, only a direct peer on loopback.
    metrics_token: str | None = Field(default_factory=lambda: os.environ.get("RELAY_METRICS_TOKEN") or None,
                                      min_length=16, repr=False)
    port: int = Field(8787, ge=0, le=65535)

    # Sessions: short and idle-limited. Terminals are shared kiosks, so theirs are shorter.
    session_max_seconds: int = Field(4 * 3600, ge=60)
    terminal_session_max_seconds: int = Field(30 * 60, ge=60)
    session_idle_seconds: int = Field(15 * 60, ge=30)
    challenge_seconds: int = Field(120, ge=10)

    # Sizes. A letter is small; video comes with its own resumable path.
    max_json_bytes: int = Field(256 * 1024, ge=1024)
    max_letter_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    max_video_bytes: int = Field(2 * 1024**3, ge=1024)  # ciphertext of a video message or its rendition
    max_upload_bytes: int = Field(4 * 1024**3, ge=1024)  # the resumable path's announced Tus-Max-Size

    # Offline guessing of a passphrase needs the bundle: hand it out sparingly.
    bundle_fetches_per_hour: int = Field(6, ge=1)
    bootstrap_code_hours: int = Field(24, ge=1)

    # The retention schedule (TOML); None means the documented defaults. The purge worker runs
    # every purge_interval_seconds (0: never on its own; `relay purge` runs it by hand), in
    # transactions of purge_batch items, resting between them so that it works at most purge_duty
    # of the time: requests keep their latency while a large backlog goes.
    retention_file: Path | None = None
    purge_interval_seconds: float = Field(600, ge=0)
    purge_batch: int = Field(50, ge=1, le=5000)
    purge_duty: float = Field(0.5, gt=0, le=1)  # the share of time a run may work: the rest is for requests

    # A full disk: new content is refused (507) once free space falls below this reserve, so the
    # database always has room to commit and nothing acknowledged is lost.
    disk_reserve_mb: int = Field(512, ge=0)

    # Slow clients (slowloris): a connection whose request headers have not all arrived this long
    # after it opened (or after its previous response) is closed; so is one whose body makes no
    # progress for body_idle_seconds.
    header_timeout_seconds: float = Field(20, gt=0, le=3600)
    body_idle_seconds: float = Field(30, gt=0, le=3600)

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {**{field: os.environ[var] for field, var in ENVIRONMENT.items()
                       if field not in data and var in os.environ}, **data}
        return data

    @property
    def disk_reserve_bytes(self) -> int:
        return self.disk_reserve_mb * 1024 * 1024

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("data_dir must be an absolute path")
        return value

    def max_bytes(self, kind: str) -> int:
        return self.max_video_bytes if kind == "video" else self.max_letter_bytes

    @property
    def database_path(self) -> Path:
        return self.data_dir / "relay.sqlite3"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    # -- limits (issue 10): quotas per person, security events, key bundles, kiosk codes, scrub --
    # Quotas: what one person may submit. Items per rolling day, and bytes still waiting for a
    # mediator's review (one largest video plus letters fits). Mediators writing to participants
    # have their own, higher, daily limit; their messages never wait in review.
    quota_items_per_day: int = Field(12, ge=1)
    quota_pending_bytes: int = Field(3 * 1024**3, ge=1024)
    quota_mediator_items_per_day: int = Field(60, ge=1)
    # Repeated refusals by one actor for one reason: one audit entry per window, the rest counted.
    security_event_window_seconds: int = Field(3600, ge=60)
    # Key bundles: a fetch followed by its owner's sign-in on that terminal within this grace is
    # refunded; a terminal may hold at most this many unrefunded fetches an hour, for anyone.
    bundle_refund_seconds: int = Field(10 * 60, ge=60)
    bundle_fetches_per_terminal_per_hour: int = Field(20, ge=1)
    # Kiosk codes: wrong codes a terminal may type in a quarter of an hour.
    kiosk_code_attempts_per_terminal: int = Field(10, ge=1)
    # The background scrub rechecks every stored blob against its signed size and hash, once per
    # scrub_interval_seconds (0: never on its own; `relay scrub` runs it by hand), working at
    # most scrub_duty of the time.
    scrub_interval_seconds: float = Field(24 * 3600, ge=0)
    scrub_duty: float = Field(0.2, gt=0, le=1)
