"""What a first-time user hit with the CLI (issue 10, items 1 to 10; issue 11's CLI parts), each
run as the real ``relay`` command against a real relay on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from relay.client.demo import local_relay
from relay.client.kdf import PRODUCTION_KDF
from tests.test_cli import relay_cmd

PASSPHRASE = "correct-horse-battery-staple-relay-test"


def run(*args: str, env: dict[str, str] | None = None, stdin: int | None = subprocess.DEVNULL,
        **kwargs: object) -> subprocess.CompletedProcess[str]:
    """The ``relay`` command as a person runs it; no assertion on the exit status."""
    base = {**os.environ, "RELAY_PASSPHRASE": PASSPHRASE, "RELAY_LANG": "en"}
    return subprocess.run([sys.executable, "-m", "relay", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=120, stdin=stdin, **kwargs)  # type: ignore[call-overload]


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr and "Error:" not in done.stderr.split("\n")[0], done.stderr
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") <= 2, done.stderr  # one sentence (and perhaps a hint), not a dump


# -- 1: coordinator init never overwrites the trust root ----------------------------------------


async def test_coordinator_init_never_overwrites_an_identity(tmp_path: Path) -> None:
    coord = tmp_path / "coord"
    async with local_relay(tmp_path / "data") as running:
        assert running.code
        # A stale code first: refused, and nothing of the attempt is left behind.
        stale = run("coordinator", "init", "--url", running.url, "--code", running.code + "x", "--profile", str(coord))
        assert stale.returncode == 1, stale.stderr
        assert not (coord / "identity.key").exists() and not (coord / "profile.json").exists()
        assert list(coord.iterdir()) == []
        # Then the right code, on the same profile: enrolled.
        relay_cmd("coordinator", "init", "--url", running.url, "--code", running.code, "--profile", str(coord))
        key, profile = (coord / "identity.key").read_bytes(), (coord / "profile.json").read_bytes()
        # Running it again (the used code, or any code) must not touch the enrolled identity.
        again = run("coordinator", "init", "--url", running.url, "--code", running.code, "--profile", str(coord),
                    env={"RELAY_PASSPHRASE": "a-different-passphrase"})
        assert again.returncode == 1
        assert "already holds a profile" in again.stderr
        assert (coord / "identity.key").read_bytes() == key and (coord / "profile.json").read_bytes() == profile
        PRODUCTION_KDF.open(key, PASSPHRASE).wipe()  # the original passphrase still opens it
        # ...and the console still works.
        relay_cmd("coordinator", "institution", "add", "Institution A", "--profile", str(coord))
