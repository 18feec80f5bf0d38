"""Server settings: one validated model (pydantic-settings).

Where a value comes from, strongest first: what the command line gives, then the environment
(``RELAY_<FIELD>``, e.g. ``RELAY_PORT``, ``RELAY_PURGE_BATCH``; the older short names below keep
working), then files in ``RELAY_SECRETS_DIR`` (one file per setting, named like its variable in
lower case, e.g. ``relay_tls_key``: the Docker/Kubernetes secrets layout), then the TOML file
given with ``--config`` or ``RELAY_CONFIG`` (the fields' own names, e.g. ``port = 8443``), then
the defaults here. ``relay config check`` shows the result and explains what is wrong.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from relay.wire import is_loopback

# Variables an operator may already use whose names predate RELAY_<FIELD>: the field, then its name.
ENVIRONMENT = {
    "header_timeout_seconds": "RELAY_HEADER_TIMEOUT",
    "body_idle_seconds": "RELAY_BODY_IDLE_TIMEOUT",
    "shutdown_grace_seconds": "RELAY_SHUTDOWN_GRACE",
    "retention_file": "RELAY_RETENTION",
    "purge_interval_seconds": "RELAY_PURGE_INTERVAL",
}

_CONFIG_FILE: ContextVar[Path | None] = ContextVar("relay_config_file", default=None)


def _also(field: str) -> Any:
    """RELAY_<FIELD> or the older variable (the field's own name works too: populate_by_name)."""
    return AliasChoices(f"relay_{field}", ENVIRONMENT[field])


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="forbid", env_prefix="RELAY_", populate_by_name=True)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings, file_secret_settings]
        if (config := _CONFIG_FILE.get()) is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(sources)

    @classmethod
    def load(cls, config_file: Path | None = None, **values: Any) -> Settings:
        """Settings from ``values`` (the command line), the environment, secret files and the TOML
        file ``config_file`` (or ``RELAY_CONFIG``). Raises ``ValidationError`` or ``OSError``."""
        if config_file is None and os.environ.get("RELAY_CONFIG"):
            config_file = Path(os.environ["RELAY_CONFIG"])
        if config_file is not None:
            config_file.open("rb").close()  # a missing or unreadable file is an error, not "no settings"
        token = _CONFIG_FILE.set(config_file)
        try:
            return cls(_secrets_dir=os.environ.get("RELAY_SECRETS_DIR") or None, **values)  # type: ignore[call-arg]
        finally:
            _CONFIG_FILE.reset(token)

    data_dir: Path
    host: str = "127.0.0.1"
    # Who may read /metrics: the bearer of this token; unset, only a direct peer on loopback.
    # (RELAY_METRICS_TOKEN, or relay_metrics_token in RELAY_SECRETS_DIR; masked when shown.)
    metrics_token: SecretStr | None = Field(None, min_length=16)
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
    retention_file: Path | None = Field(None, validation_alias=_also("retention_file"))
    purge_interval_seconds: float = Field(600, ge=0, validation_alias=_also("purge_interval_seconds"))
    purge_batch: int = Field(50, ge=1, le=5000)
    purge_duty: float = Field(0.5, gt=0, le=1)  # the share of time a run may work: the rest is for requests

    # A full disk: new content is refused (507) once free space falls below this reserve, so the
    # database always has room to commit and nothing acknowledged is lost.
    disk_reserve_mb: int = Field(512, ge=0)

    # Slow clients (slowloris): a connection whose request headers have not all arrived this long
    # after it opened (or after its previous response) is closed; so is one whose body makes no
    # progress for body_idle_seconds.
    header_timeout_seconds: float = Field(20, gt=0, le=3600, validation_alias=_also("header_timeout_seconds"))
    body_idle_seconds: float = Field(30, gt=0, le=3600, validation_alias=_also("body_idle_seconds"))
    # A flood of connections must not take the file descriptors the database and the blobs need:
    # past max_connections open at once, a new one gets a 503 too-busy problem and is closed.
    # The relay raises its open-file limit to fit (max_connections + FILES_KEPT_FREE) at start.
    # Unset: 2048, or fewer where the system's open-file limit cannot fit that many.
    max_connections: int | None = Field(None, ge=8, le=1_000_000)

    # Stopping (SIGTERM, SIGINT): the relay stops accepting at once, lets requests in flight finish
    # for up to shutdown_grace_seconds, then cuts the rest off (an upload cut off resumes from its
    # acknowledged offset). The purge and scrub workers stop between two steps.
    shutdown_grace_seconds: float = Field(10, ge=0, le=600, validation_alias=_also("shutdown_grace_seconds"))

    # TLS: the relay serves https itself from this certificate chain and key (PEM), or sits behind
    # a TLS proxy (behind_proxy). Off loopback it refuses plain http unless behind_proxy is set:
    # tokens and sessions must never cross a network in the clear.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    behind_proxy: bool = False

    # The log (stderr): one JSON object a line for a log collector (json), or one readable line for
    # a developer's terminal (text); from log_level up. Either way it names request and job ids,
    # never a request's values (relay/server/logs.py).
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Take a proxy's X-Request-Id (when tame) as the request's id, so both logs correlate. Only
    # when the proxy sets the header itself, replacing a client's (nginx: proxy_set_header
    # X-Request-Id $request_id): otherwise a client could choose the id its lines carry.
    trust_request_id: bool = False

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def transport_problem(self) -> str | None:
        """What is wrong with how the relay would be reached, as a message key, if anything."""
        if (self.tls_cert is None) != (self.tls_key is None):
            return "tls-pair"
        if not self.tls and not self.behind_proxy and not is_loopback(self.host):
            return "tls-needed"
        return None

    @property
    def disk_reserve_bytes(self) -> int:
        return self.disk_reserve_mb * 1024 * 1024

    @field_validator("data_dir", "retention_file", "tls_cert", "tls_key")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        """Paths are kept absolute: one given relative (a variable, a TOML file) is taken from
        the directory the relay was started in, once, here."""
        return value if value is None or value.is_absolute() else value.resolve()

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
    # Deliveries being streamed are checked again after every change the relay accepts, and every
    # delivery_recheck_seconds for what changes with time or outside a request (services.deliveries).
    delivery_recheck_seconds: float = Field(2, gt=0, le=60)
