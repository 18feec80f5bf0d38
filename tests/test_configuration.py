"""Settings from every source (command line, RELAY_* variables old and new, secret files, a TOML
file) and ``relay config check``, which explains every problem and shows what is in effect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from relay.server.settings import Settings


def config_check(*args: str, env: dict[str, str] | None = None, lang: str = "en") -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return subprocess.run([sys.executable, "-m", "relay", "--lang", lang, "config", "check", *args],
                          capture_output=True, text=True, timeout=60, env={**clean, **(env or {})},
                          stdin=subprocess.DEVNULL)


def effective(output: str) -> dict[str, str]:
    return dict(line.split(" = ", 1) for line in output.splitlines() if " = " in line and not line.startswith("#"))


def test_each_source_in_its_order_and_the_older_variables_still_work(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    config = tmp_path / "relay.toml"
    config.write_text(f'data_dir = "{data}"\nport = 9001\nheader_timeout_seconds = 7\npurge_batch = 3\n'
                      'shutdown_grace_seconds = 4\n')
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "relay_quota_items_per_day").write_text("40")
    done = config_check("--config", str(config), "--purge-duty", "0.3", env={
        "RELAY_HEADER_TIMEOUT": "5",  # an older name beats the file
        "RELAY_SHUTDOWN_GRACE": "6",
        "RELAY_PURGE_BATCH": "8",  # RELAY_<FIELD> for any setting
        "RELAY_PURGE_DUTY": "0.9",  # the command line beats the environment
        "RELAY_SECRETS_DIR": str(secrets)})
    assert done.returncode == 0, done.stderr
    got = effective(done.stdout)
    assert (got["port"], got["header_timeout_seconds"], got["purge_batch"], got["purge_duty"],
            got["shutdown_grace_seconds"], got["quota_items_per_day"]) == ("9001", "5.0", "8", "0.3", "6.0", "40")
    assert got["data_dir"] == f'"{data}"' and "valid" in done.stderr

    # In the process: the same rules (what tests and `relay serve` build).
    monkeypatch.setenv("RELAY_BODY_IDLE_TIMEOUT", "12")
    monkeypatch.setenv("RELAY_DISK_RESERVE_MB", "64")
    settings = Settings.load(config, port=9100)
    assert (settings.port, settings.body_idle_seconds, settings.disk_reserve_mb, settings.purge_batch) == (
        9100, 12.0, 64, 3)


def test_config_check_explains_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "relay.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\nport = 70000\npurge_duty = 2\ncolour = "blue"\n')
    done = config_check("--config", str(config))
    assert done.returncode == 1
    problems = [line for line in done.stderr.splitlines() if line.startswith("- ")]
    assert len(problems) == 3, done.stderr
    assert any(p.startswith("- port = 70000") for p in problems)
    assert any(p.startswith("- purge_duty = 2") for p in problems)
    assert any(p.startswith("- colour") for p in problems)
    assert "3 problem(s) found" in done.stderr

    # Valid values, but a relay that would be unsafe or unable to start: each said.
    data = tmp_path / "open"
    data.mkdir()
    data.chmod(0o755)
    (tmp_path / "cert.pem").write_text("not a certificate")
    config.write_text(f'data_dir = "{data}"\nhost = "0.0.0.0"\ntls_cert = "{tmp_path / "cert.pem"}"\n'
                      f'retention_file = "{tmp_path / "missing.toml"}"\n')
    done = config_check("--config", str(config))
    assert done.returncode == 1
    problems = [line for line in done.stderr.splitlines() if line.startswith("- ")]
    assert len(problems) == 3, done.stderr  # the key missing, the directory open to others, the schedule
    assert "go together" in problems[0] and "chmod 700" in problems[1] and "missing.toml" in problems[2]
    assert 'host = "0.0.0.0"' in done.stdout  # the settings in effect are shown all the same

    french = config_check("--config", str(config), lang="fr")
    assert "problème(s) trouvé(s)" in french.stderr

    missing = config_check("--config", str(tmp_path / "nowhere.toml"))
    assert missing.returncode == 1 and "cannot be used" in missing.stderr


def test_secrets_are_masked_in_what_config_check_prints(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "relay_metrics_token").write_text("a-long-metrics-token-from-a-file")
    done = config_check("--data-dir", str(data), env={"RELAY_SECRETS_DIR": str(secrets)})
    assert done.returncode == 0, done.stderr
    assert 'metrics_token = "********"' in done.stdout and "a-long-metrics-token" not in done.stdout + done.stderr
    short = config_check("--data-dir", str(data), env={"RELAY_METRICS_TOKEN": "short-secret"})
    assert short.returncode == 1 and "metrics_token = ********" in short.stderr
    assert "short-secret" not in short.stdout + short.stderr


def test_settings_refuse_unknown_names_and_bad_values() -> None:
    with pytest.raises(ValidationError):
        Settings(data_dir=Path("/tmp/x"), colour="blue")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Settings(data_dir=Path("/tmp/x"), purge_duty=0)
