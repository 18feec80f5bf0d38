"""The README's walk-through, command by command, as a person would type it, against a real relay."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from relay.client.demo import local_relay

PASSPHRASE_LINE = re.compile(r"^\s{4}([a-z]+(?:-[a-z]+){5})\s*$", re.MULTILINE)


def relay_cmd(*args: str, passphrase: str = "correct-horse-battery-staple-relay-test",
              expect: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RELAY_PASSPHRASE": passphrase, "RELAY_LANG": "en"}
    if not passphrase:  # let the relay generate one and show it
        env.pop("RELAY_PASSPHRASE")
    done = subprocess.run([sys.executable, "-m", "relay", *args], capture_output=True, text=True, env=env,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == expect, f"relay {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


def field(output: str, pattern: str) -> str:
    match = re.search(pattern, output)
    assert match, output
    return match.group(1)


async def test_one_whole_exchange_by_hand_with_the_cli(tmp_path: Path) -> None:
    home = tmp_path
    async with local_relay(tmp_path / "relay-data") as running:
        assert running.code
        coord = str(home / "coordinator")
        relay_cmd("coordinator", "init", "--url", running.url, "--code", running.code, "--profile", coord)
        inst = field(relay_cmd("coordinator", "institution", "add", "Institution A", "--profile", coord).stdout,
                     r'"id": "(ins_[0-9a-f]{16})"')

        # The mediator and the victim make their keys on their own devices.
        people = {}
        for name, role, relation, kind in (("mediator", "mediator", None, "mediator_desk"),
                                           ("victim", "participant", "victim", "participant_device")):
            profile = str(home / name)
            relay_cmd("keygen", "--profile", profile)
            args = ["coordinator", "person", "add", "--profile", coord, "--role", role, "--label", name.title(),
                    "--keys", f"{profile}/public-keys.json"]
            if relation:
                args += ["--relation", relation]
            people[name] = field(relay_cmd(*args).stdout, r"Enrolled (per_[0-9a-f]{16})")
            device_file = str(home / f"{name}.device.json")
            relay_cmd("coordinator", "device", "add", "--profile", coord, "--kind", kind, "--person", people[name],
                      "--label", f"{name} device", "--out", device_file)
            relay_cmd("provision", device_file, "--profile", profile)

        # The offender uses the institution's kiosk: they make their key there, sealed under their own
        # passphrase; the coordinator enrolls the public half and stores the sealed bundle it cannot open.
        made = relay_cmd("keygen", "--profile", str(home / "offender-keys"), passphrase="")
        match = PASSPHRASE_LINE.search(made.stderr)
        assert match, made.stderr
        offender_passphrase = match.group(1)
        added = relay_cmd("coordinator", "person", "add", "--profile", coord, "--role", "participant",
                          "--relation", "offender", "--label", "Offender", "--institution", inst,
                          "--keys", str(home / "offender-keys" / "public-keys.json"),
                          "--key-bundle", str(home / "offender-keys" / "identity.key"))
        people["offender"] = field(added.stdout, r"Enrolled (per_[0-9a-f]{16})")
        # The code the offender will type at the kiosk, shown once to the coordinator; a new one replaces it.
        first_code = field(added.stdout, r"shown only once\): ([0-9A-Z]{4}-[0-9A-Z]{4})")
        renewed = relay_cmd("coordinator", "person", "kiosk-code", people["offender"], "--profile", coord)
        assert field(renewed.stdout, r"shown only once\): ([0-9A-Z]{4}-[0-9A-Z]{4})") != first_code
        relay_cmd("coordinator", "device", "add", "--profile", coord, "--kind", "terminal", "--institution", inst,
                  "--label", "kiosk 1", "--out", str(home / "kiosk.device.json"))
        kiosk = str(home / "kiosk")
        relay_cmd("provision", str(home / "kiosk.device.json"), "--profile", kiosk)

        case = field(relay_cmd("coordinator", "case", "open", "--profile", coord, "--referral", "victim",
                               "--institution", inst).stdout, r'"id": "(cas_[0-9a-f]{16})"')
        relay_cmd("coordinator", "case", "add-participant", case, "--person", people["victim"], "--profile", coord)
        relay_cmd("coordinator", "case", "add-participant", case, "--person", people["offender"], "--profile", coord)
        relay_cmd("coordinator", "case", "assign-mediator", case, "--person", people["mediator"], "--profile", coord)
        relay_cmd("coordinator", "case", "open", "--profile", coord, "--referral", "offender", "--institution", inst,
                  expect=1)

        letter = home / "letter.txt"
        letter.write_text("I would like you to know how that day changed my life.\n")
        item = field(relay_cmd("send", str(letter), "--profile", str(home / "victim"), "--case", case,
                               "--to", people["offender"]).stdout, r"Sent (itm_[0-9a-f]{16})")
        inbox = relay_cmd("inbox", "--profile", kiosk, "--person", people["offender"], passphrase=offender_passphrase)
        assert item not in inbox.stdout and "Nothing here" in inbox.stdout

        queue = relay_cmd("review", "queue", "--profile", str(home / "mediator")).stdout
        assert item in queue
        opened = relay_cmd("review", "open", item, "--profile", str(home / "mediator")).stdout
        assert "how that day changed my life" in opened
        relay_cmd("review", "release", item, "--profile", str(home / "mediator"))

        assert item in relay_cmd("inbox", "--profile", kiosk, "--person", people["offender"],
                                 passphrase=offender_passphrase).stdout
        fetched = relay_cmd("fetch", item, "--profile", kiosk, "--person", people["offender"],
                            passphrase=offender_passphrase).stdout
        assert fetched == letter.read_text()
        relay_cmd("fetch", item, "--profile", kiosk, "--person", people["offender"], passphrase="wrong-words",
                  expect=1)
        sent = relay_cmd("sent", "--profile", str(home / "victim")).stdout
        assert "Opened by the recipient" in sent

        # A court order now bars contact: the offender's reply waits for the national unit.
        cond = field(relay_cmd("coordinator", "condition", "add", "--profile", coord, "--kind", "court_order",
                               "--reference", "ONCJ-1187", "--restricted", people["offender"], "--protect",
                               people["victim"], "--direction", "both", "--start", "2026-01-01T00:00:00Z",
                               "--no-program-exception").stdout, r'"id": "(cnd_[0-9a-f]{16})"')
        reply = home / "reply.txt"
        reply.write_text("Thank you for writing. I am sorry.\n")
        reply_id = field(relay_cmd("send", str(reply), "--profile", kiosk, "--person", people["offender"], "--case",
                                   case, "--to", people["victim"], passphrase=offender_passphrase).stdout,
                         r"Sent (itm_[0-9a-f]{16})")
        assert "awaiting the national unit's approval" in relay_cmd("review", "queue", "--profile",
                                                                    str(home / "mediator")).stdout
        refused = relay_cmd("review", "release", reply_id, "--profile", str(home / "mediator"), expect=1)
        assert "approval-required" in refused.stderr
        relay_cmd("coordinator", "approval", "add", "--profile", coord, "--case", case, "--condition", cond,
                  "--direction", "from_restricted", "--kind", "letter", "--until", "2099-01-01T00:00:00Z")
        relay_cmd("review", "release", reply_id, "--profile", str(home / "mediator"))
        assert relay_cmd("fetch", reply_id, "--profile", str(home / "victim")).stdout == reply.read_text()

        french = subprocess.run([sys.executable, "-m", "relay", "--lang", "fr", "sent", "--profile",
                                 str(home / "victim")], capture_output=True, text=True, timeout=120,
                                env={**os.environ, "RELAY_PASSPHRASE": "correct-horse-battery-staple-relay-test"})
        assert "Ouvert par le destinataire" in french.stdout

    for profile in ("coordinator", "mediator", "victim", "kiosk"):
        assert (home / profile).stat().st_mode & 0o077 == 0
        assert json.loads((home / profile / "profile.json").read_text())["device_token"]


def test_the_demo_runs_and_writes_what_the_recipient_received(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "relay", "demo", "--out", str(out), "--data-dir",
                           str(tmp_path / "kept")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    received = list(out.iterdir())
    assert len(received) == 1
    text = received[0].read_text()
    assert "Lakeview" not in text and "[Removed by the mediator: location.]" in text
    assert (tmp_path / "kept" / "relay.sqlite3").exists()


def test_the_demo_sends_a_given_letter_as_written(tmp_path: Path) -> None:
    letter = tmp_path / "mine.txt"
    letter.write_text("Bonjour. Je voudrais vous écrire.\n")
    done = subprocess.run([sys.executable, "-m", "relay", "demo", "--letter", str(letter), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p.read_text() for p in (tmp_path / "out").iterdir()] == [letter.read_text()]


@pytest.mark.parametrize("argv", [["send", "x.txt", "--profile", "/nonexistent", "--case", "c", "--to", "t"]])
def test_cli_errors_say_what_to_do(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "relay", "--lang", "en", *argv], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert "set this device up first from the file the coordinator gave you: relay provision FILE --profile /nonexistent" in done.stderr


def test_sigterm_stops_the_demo_and_the_relay_it_started(tmp_path: Path) -> None:
    # A SIGTERM (a service manager, `timeout`, `kill`) used to end `relay demo --keep` alone and
    # leave its relay running, holding its port and the demo's data directory.
    demo = subprocess.Popen([sys.executable, "-m", "relay", "--lang", "en", "demo", "--keep", str(tmp_path / "d"),
                             "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert demo.stdout is not None
        port = None
        for line in demo.stdout:
            if match := re.search(r"relay listening at http://127\.0\.0\.1:(\d+)", line):
                port = int(match.group(1))
            if "Ctrl-C stops" in line:
                break
        assert port is not None
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # the relay is up
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=30) != 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        demo.kill()
        demo.wait()
        if demo.stdout is not None:
            demo.stdout.close()
