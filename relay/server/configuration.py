"""``relay config check`` (and the checks ``relay serve`` makes before it starts): build the
settings from every source, and explain each problem in the operator's language, not just the
first: values that do not validate, a TOML file that cannot be read, TLS files that cannot be
used, an address reachable from the network without TLS, a data directory others can read, a
retention schedule that does not load. Then the effective settings, secrets masked.
"""

from __future__ import annotations

import resource
import ssl
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretBytes, SecretStr, ValidationError

from relay.i18n.cli import say
from relay.server import retention_config
from relay.server.serving import FILES_KEPT_FREE
from relay.server.settings import Settings

DEFAULT_DATA_DIR = Path("relay-data")


@dataclass
class Report:
    settings: Settings | None
    problems: list[str] = field(default_factory=list)

    @property
    def effective(self) -> str:
        return effective(self.settings) if self.settings is not None else ""


def _load(config: Path | None, values: dict[str, Any]) -> Settings:
    try:
        return Settings.load(config, **values)
    except ValidationError as exc:
        if "data_dir" not in values and [e["loc"] for e in exc.errors()] == [("data_dir",)]:
            return Settings.load(config, **values, data_dir=DEFAULT_DATA_DIR.resolve())  # nothing named one
        raise


def check(config: Path | None, values: dict[str, Any], lang: str, *, for_serving: bool = False) -> Report:
    try:
        settings = _load(config, values)
    except ValidationError as exc:
        return Report(None, [say("config.invalid", lang, field=".".join(map(str, e["loc"])) or "-",
                                 value=_shown(e.get("input"), e["loc"]), why=e["msg"])
                             for e in exc.errors(include_url=False)])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return Report(None, [say("config.file", lang, path=config, why=getattr(exc, "strerror", None) or exc)])
    report = Report(settings)
    problems = report.problems
    if key := settings.transport_problem():
        problems.append(say(key, lang, host=settings.host))
    for path in (settings.tls_cert, settings.tls_key):
        if path is not None and not path.is_file():
            problems.append(say("operator.unreadable", lang, path=path, why="not a file"))
    if settings.tls_cert and settings.tls_key and settings.tls_cert.is_file() and settings.tls_key.is_file():
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(settings.tls_cert, settings.tls_key)
        except (ssl.SSLError, OSError) as exc:
            problems.append(say("tls-unusable", lang, reason=getattr(exc, "reason", None) or exc))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = (settings.max_connections or 0) + FILES_KEPT_FREE
    if settings.max_connections is not None and hard != resource.RLIM_INFINITY and hard < wanted:
        problems.append(say("config.open-files", lang, most=settings.max_connections, wanted=wanted, limit=hard,
                            fits=hard - FILES_KEPT_FREE))
    data_dir = settings.data_dir
    if data_dir.is_dir() and data_dir.stat().st_mode & 0o077:
        problems.append(say("data-dir-open", lang, path=data_dir))
    elif not data_dir.exists() and not for_serving:
        problems.append(say("config.no-data-dir", lang, path=data_dir))  # serve creates it; a check says so
    try:
        retention_config.load(settings.retention_file)
    except retention_config.ScheduleError as exc:
        problems.append(str(exc))
    return report


SECRET_FIELDS = frozenset(name for name, info in Settings.model_fields.items()
                          if "Secret" in str(info.annotation))


def _shown(value: Any, loc: tuple[Any, ...]) -> str:
    """A refused value as the operator gave it, unless it belongs to a secret setting."""
    if isinstance(value, SecretStr | SecretBytes) or any(str(part) in SECRET_FIELDS for part in loc):
        return "********"
    text = repr(value) if not isinstance(value, dict) else "{…}"
    return text if len(text) <= 80 else text[:77] + "…"


def effective(settings: Settings) -> str:
    """The settings as a TOML document a ``--config`` file could hold; secret values masked."""
    lines = []
    for name in sorted(Settings.model_fields):
        value = getattr(settings, name)
        if isinstance(value, SecretStr | SecretBytes):
            lines.append(f'{name} = "********"')
        elif value is None:
            lines.append(f"# {name} is not set")
        elif isinstance(value, bool):
            lines.append(f"{name} = {'true' if value else 'false'}")
        elif isinstance(value, int | float):
            lines.append(f"{name} = {value}")
        else:
            lines.append(f"{name} = {_toml_string(str(value))}")
    return "\n".join(lines)


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
