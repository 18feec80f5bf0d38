"""What a first-time user hit with the CLI (issue 10, items 1 to 10; issue 11's CLI parts), each
run as the real ``relay`` command against a real relay on loopback."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import pty
import re
import socket
import subprocess
import sys
import time
import types
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relay import envelope
from relay.client.cli import parser as cli_parser
from relay.client.cli.common import age, command, human_size
from relay.client.cli.entry import describe_problem
from relay.client.demo import local_relay
from relay.client.kdf import PRODUCTION_KDF
from relay.client.profile import IDENTITY_FILE, Profile, write_private
from relay.client.scenario import Someone, World, build_world
from relay.client.sdk import ProblemError
from relay.client.visible import reveal, reveal_bytes
from relay.envelope import Identity
from relay.wire import WITHHOLD_REASONS
from tests.media_fixtures import encode
from tests.test_cli import relay_cmd

PASSPHRASE = "correct-horse-battery-staple-relay-test"


def run(*args: str, env: dict[str, str] | None = None, stdin: int | None = subprocess.DEVNULL,
        **kwargs: object) -> subprocess.CompletedProcess[str]:
    """The ``relay`` command as a person runs it; no assertion on the exit status."""
    base = {**os.environ, "RELAY_PASSPHRASE": PASSPHRASE, "RELAY_LANG": "en"}
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("timeout", 120)
    return subprocess.run([sys.executable, "-m", "relay", *args], text=True, env={**base, **(env or {})},
                          stdin=stdin, **kwargs)  # type: ignore[call-overload,no-any-return]


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


# -- a case set up through the SDK, with each person's profile as 'relay provision' writes it --


@dataclass
class Desk:
    """Profiles on disk for the coordinator, mediator and victim, and the offender's kiosk."""

    url: str
    data_dir: Path
    world: World
    profiles: dict[str, Path]

    def as_(self, who: str, *args: str, expect: int | None = 0, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        extra: list[str] = ["--profile", str(self.profiles[who])]
        env = kwargs.pop("env", {})
        if who == "kiosk":
            extra += ["--person", self.world.offender.person_id]
            env = {"RELAY_PASSPHRASE": str(self.world.offender.passphrase), **env}
        done = run(*args, *extra, env=env, **kwargs)
        if expect is not None:
            assert done.returncode == expect, f"relay {' '.join(args)}\n{done.stdout}\n{done.stderr}"
        return done


def _write_profile(directory: Path, world: World, token: str, kind: str, someone: Someone | None) -> Path:
    Profile(url=world.url, device_id=token.split(".", 1)[0], device_token=token, device_kind=kind,
            trust_root=world.trust_root, person_id=someone.person_id if someone else None).save(directory)
    if someone is not None:
        write_private(directory / IDENTITY_FILE, PRODUCTION_KDF.seal(someone.identity, PASSPHRASE))
        (directory / "public-keys.json").write_text(json.dumps(
            {"sign_pk": envelope.b64e(someone.identity.public.sign_pk),
             "box_pk": envelope.b64e(someone.identity.public.box_pk)}))
    return directory


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with local_relay(tmp_path / "relay-data") as running:
        assert running.code
        world = await build_world(running.url, running.code, kdf=PRODUCTION_KDF)
        profiles = {
            "coord": _write_profile(tmp_path / "coord", world, str(world.coordinator.device_token),
                                    "coordinator_console", world.coordinator),
            "mediator": _write_profile(tmp_path / "mediator", world, str(world.mediator.device_token),
                                       "mediator_desk", world.mediator),
            "victim": _write_profile(tmp_path / "victim", world, str(world.victim.device_token),
                                     "participant_device", world.victim),
            "kiosk": _write_profile(tmp_path / "kiosk", world, world.terminal_token, "terminal", None),
        }
        yield Desk(running.url, tmp_path / "relay-data", world, profiles)


def sent_id(done: subprocess.CompletedProcess[str]) -> str:
    match = re.search(r"(itm_[0-9a-f]{16})", done.stdout)
    assert match, done.stdout + done.stderr
    return match.group(1)


def send_letter(desk: Desk, tmp_path: Path, text: bytes | str, *, to: str | None = None, who: str = "victim") -> str:
    letter = tmp_path / f"letter-{len(list(tmp_path.glob('letter-*')))}.txt"
    letter.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return sent_id(desk.as_(who, "send", str(letter), "--case", desk.world.case_id,
                            "--to", to or desk.world.offender.person_id))


# -- 2: resume says what failed, exits non-zero, and can drop an entry -------------------------


async def test_resume_reports_refused_sends_and_can_drop_them(desk: Desk, tmp_path: Path) -> None:
    letter = tmp_path / "letter.txt"
    letter.write_text("A letter to someone who is not in this case.\n")
    refused = desk.as_("victim", "send", str(letter), "--case", desk.world.case_id, "--to", "per_0000000000000000",
                       expect=1)
    assert "Traceback" not in refused.stderr
    outbox = desk.profiles["victim"] / "outbox" / desk.world.victim.person_id
    [entry] = [p.name for p in outbox.iterdir()]

    resumed = desk.as_("victim", "resume", expect=1)
    assert f"Not sent {entry}:" in resumed.stderr
    assert "Sent " not in resumed.stdout
    assert f"relay resume --drop {entry}" in resumed.stderr
    assert (outbox / entry).is_dir()  # kept for a later try, until dropped

    assert "Removed" in desk.as_("victim", "resume", "--drop", entry).stdout
    assert not (outbox / entry).exists()
    assert "Nothing here" in desk.as_("victim", "resume").stdout
    desk.as_("victim", "resume", "--drop", "../../coord", expect=1)  # never a path
    assert (desk.profiles["coord"] / "profile.json").exists()


# -- 3: no traceback reaches a person ----------------------------------------------------------


async def test_expected_failures_are_one_sentence_and_no_traceback(desk: Desk, tmp_path: Path) -> None:
    missing = desk.as_("victim", "send", str(tmp_path / "no-such-letter.txt"), "--case", desk.world.case_id,
                       "--to", desk.world.offender.person_id, expect=None)
    no_traceback(missing)
    assert "There is no file or folder at" in missing.stderr and "no-such-letter.txt" in missing.stderr

    mistyped = run("inbox", "--profile", str(tmp_path / "victm"))
    no_traceback(mistyped)
    assert "There is no profile in" in mistyped.stderr

    french = run("inbox", "--profile", str(tmp_path / "victm"), "--lang", "fr")
    no_traceback(french)
    assert "Il n'y a pas de profil" in french.stderr

    # Output into a pipe whose reader has gone (``| head -1`` after its line): writing fails with EPIPE.
    item = send_letter(desk, tmp_path, "line\n" * 1000)
    desk.as_("mediator", "review", "release", item)
    for argv in (["fetch", item], ["inbox"]):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            gone = desk.as_("kiosk", *argv, expect=None, stdout=write_end, capture_output=False,
                            stderr=subprocess.PIPE)
        finally:
            os.close(write_end)
        assert gone.returncode != 0
        assert "Traceback" not in gone.stderr and "BrokenPipeError" not in gone.stderr, gone.stderr


def test_serve_refuses_an_open_data_directory_in_one_sentence(tmp_path: Path) -> None:
    data = tmp_path / "relay-data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    done = run("serve", "--data-dir", str(data), "--port", "0", timeout=60)
    no_traceback(done)
    assert "chmod 700" in done.stderr and str(data) in done.stderr


# -- 4: an unreachable relay is named -----------------------------------------------------------


def test_an_unreachable_relay_is_named(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again at once: nothing listens there
    identity = Identity.generate()
    Profile(url=f"http://127.0.0.1:{port}", device_id="dev_0000000000000000", device_token="dev_0000000000000000.x",
            device_kind="participant_device", trust_root=envelope.b64e(identity.public.sign_pk),
            person_id="per_0000000000000000").save(tmp_path / "p")
    write_private(tmp_path / "p" / IDENTITY_FILE, PRODUCTION_KDF.seal(identity, PASSPHRASE))
    for lang in ("en", "fr"):
        done = run("inbox", "--profile", str(tmp_path / "p"), "--lang", lang)
        no_traceback(done)
        assert f"http://127.0.0.1:{port}" in done.stderr and "?" not in done.stderr


# -- 5: bilingual throughout, --lang anywhere ---------------------------------------------------


def _help_texts(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str]]:
    """(where, help) for every option, argument and subcommand, recursively."""
    yield parser.prog, parser.description or ""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _help_texts(child)
        elif action.help and action.help != argparse.SUPPRESS and action.dest != "help":
            yield f"{parser.prog} {'/'.join(action.option_strings) or action.dest}", action.help


def test_every_help_text_exists_in_french() -> None:
    english, french = dict(_help_texts(cli_parser("en"))), dict(_help_texts(cli_parser("fr")))
    assert english.keys() == french.keys()
    same = [where for where in english if english[where] == french[where]]
    assert same == []
    assert len(english) > 150


def test_lang_works_anywhere_and_argparse_speaks_french() -> None:
    helped = run("send", "--lang", "fr", "--help")
    assert helped.returncode == 0 and "utilisation :" in helped.stdout and "le dossier" in helped.stdout
    nested = run("coordinator", "case", "--help", "--lang", "fr")
    assert nested.returncode == 0 and "qui a renvoyé le dossier" in nested.stdout
    wrong = run("send", "letter.txt", "--lang", "fr")
    assert wrong.returncode == 2 and "les arguments suivants sont requis" in wrong.stderr
    from_env = run("send", "letter.txt", env={"RELAY_LANG": "", "LANG": "fr_CA.UTF-8", "LC_ALL": ""})
    assert "les arguments suivants sont requis" in from_env.stderr


async def test_tables_and_states_in_french(desk: Desk, tmp_path: Path) -> None:
    send_letter(desk, tmp_path, "Bonjour.\n")
    sent = desk.as_("victim", "sent", "--lang", "fr").stdout
    assert "Identifiant" in sent and "État" in sent and "En attente de l'examen" in sent
    assert "Offender" in sent and desk.world.offender.person_id not in sent  # a label, not an id
    queue = desk.as_("mediator", "--lang", "fr", "review", "queue").stdout
    assert "en attente d'examen" in queue and "lettre" in queue and "à l'instant" in queue


def test_the_demo_narrates_in_french(tmp_path: Path) -> None:
    done = run("--lang", "fr", "demo", "--out", str(tmp_path / "out"), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[1] Le coordonnateur" in done.stdout and "L'échange complet a fonctionné." in done.stdout
    assert "The coordinator" not in done.stdout and "relay listening" not in done.stdout


# -- 6: messages that say what happened ---------------------------------------------------------


async def test_sending_to_yourself_is_said_plainly(desk: Desk, tmp_path: Path) -> None:
    letter = tmp_path / "me.txt"
    letter.write_text("To myself.\n")
    done = desk.as_("victim", "send", str(letter), "--case", desk.world.case_id,
                    "--to", desk.world.victim.person_id, expect=1)
    assert "cannot send an item to yourself" in done.stderr
    assert "did not verify" not in done.stderr and "coordinator" not in done.stderr
    outbox = desk.profiles["victim"] / "outbox" / desk.world.victim.person_id
    assert not outbox.exists() or list(outbox.iterdir()) == []  # refused before anything was sealed
    to_mediator = desk.as_("victim", "send", str(letter), "--case", desk.world.case_id,
                           "--to", desk.world.mediator.person_id, expect=1)
    assert "--to mediators" in to_mediator.stderr and "did not verify" not in to_mediator.stderr


async def test_a_problem_shows_its_title_and_every_detail_field(desk: Desk) -> None:
    # "staff" is the program's word for an institutional referral, and is accepted; an offender's
    # own request is refused, and the answer lists what is accepted.
    desk.as_("coord", "coordinator", "case", "open", "--referral", "staff", "--institution",
             desk.world.institution_id)
    done = desk.as_("coord", "coordinator", "case", "open", "--referral", "offender", "--institution",
                    desk.world.institution_id, expect=None)
    assert done.returncode == 1
    assert "(the relay answered 422 offender-request-not-accepted)" in done.stderr
    assert "accepted: victim, staff, institutional, community" in done.stderr  # what to type instead


def test_problem_details_are_shown_generically() -> None:
    problem = {"type": "urn:mediation-relay:problem:screening-refused", "title": "Waiting for approval.",
               "status": 409, "instance": "/v1/items/itm_1/decision", "detail": "condition-requires-approval",
               "condition": {"reference": "ONCJ-1187", "kind": "court_order"}, "accepted": ["a", "b"]}
    text = describe_problem(ProblemError(409, problem), "en")
    assert text.splitlines()[0] == "Waiting for approval. (the relay answered 409 screening-refused)"
    assert "  detail: condition-requires-approval" in text
    assert "  condition: reference ONCJ-1187; kind court_order" in text and "  accepted: a, b" in text
    assert "/v1/items" not in text


# -- 7: binary never to a terminal, exact bytes to a pipe; read shows a letter ------------------


async def test_review_open_of_a_video_refuses_a_terminal_and_pipes_exact_bytes(desk: Desk, tmp_path: Path) -> None:
    video = encode(tmp_path / "message.mp4", seconds=1)
    item = sent_id(desk.as_("victim", "send", str(video), "--case", desk.world.case_id,
                            "--to", desk.world.offender.person_id))
    piped = subprocess.run([sys.executable, "-m", "relay", "review", "open", item, "--profile",
                            str(desk.profiles["mediator"])], capture_output=True, timeout=120,
                           env={**os.environ, "RELAY_PASSPHRASE": PASSPHRASE, "RELAY_LANG": "en"})
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == video.read_bytes()  # unchanged, byte for byte

    primary, secondary = pty.openpty()
    try:
        on_terminal = subprocess.run([sys.executable, "-m", "relay", "review", "open", item, "--profile",
                                      str(desk.profiles["mediator"])], stdout=secondary, stderr=subprocess.PIPE,
                                     timeout=120, env={**os.environ, "RELAY_PASSPHRASE": PASSPHRASE,
                                                       "RELAY_LANG": "en"})
        os.set_blocking(primary, False)
        try:
            shown = os.read(primary, 1 << 20)
        except BlockingIOError:
            shown = b""
    finally:
        os.close(primary)
        os.close(secondary)
    assert on_terminal.returncode == 1
    assert b"--out" in on_terminal.stderr and b"not text" in on_terminal.stderr
    assert b"ftyp" not in shown and len(shown) < 1000

    out = desk.as_("mediator", "review", "open", item, "--out", str(tmp_path / "original.mp4"))
    assert "Verified the sender's signature" in out.stderr and "mediator's release" not in out.stderr
    assert (tmp_path / "original.mp4").read_bytes() == video.read_bytes()


async def test_review_read_prints_the_letter(desk: Desk, tmp_path: Path) -> None:
    item = send_letter(desk, tmp_path, "A letter for the mediator only.\n", to="mediators")
    done = desk.as_("mediator", "review", "read", item)
    assert done.stdout == "A letter for the mediator only.\n"
    assert "Marked" in done.stderr and "{" not in done.stdout


# -- 8: withhold reasons from a fixed list ------------------------------------------------------


async def test_withhold_takes_a_reason_from_the_fixed_list(desk: Desk, tmp_path: Path) -> None:
    helped = desk.as_("mediator", "review", "--help", "--lang", "fr")
    for code in WITHHOLD_REASONS:
        assert code in helped.stdout
    assert "Le transmettre pourrait mettre quelqu'un en danger" in helped.stdout  # each code's words, in French
    item = send_letter(desk, tmp_path, "Something.\n")
    refused = desk.as_("mediator", "review", "withhold", item, "--reason", "because", expect=2)
    assert "invalid choice" in refused.stderr
    assert item in desk.as_("mediator", "review", "queue").stdout  # nothing was decided
    done = desk.as_("mediator", "review", "withhold", item, "--reason", "safety-concern")
    assert "Passing it on could put someone at risk" in done.stdout


# -- 9: sizes, ages, labels and states in words; audit's default; the real address --------------


def test_sizes_and_ages_in_words() -> None:
    assert human_size(1_500_000, "en") == "1.5 MB" and human_size(1_500_000, "fr") == "1,5 Mo"
    assert human_size(3_200_000_000, "en") == "3.2 GB" and human_size(800, "fr") == "800 octets"
    assert age(3 * 86400 + 5, "en") == "3 days" and age(3 * 86400, "fr") == "3 jours"
    assert age(3600, "en") == "1 hour" and age(20, "en") == "just now" and age(125, "fr") == "2 minutes"


async def test_queue_and_inbox_show_labels_ages_and_states_in_words(desk: Desk, tmp_path: Path) -> None:
    item = send_letter(desk, tmp_path, "x" * 40_000)
    queue = desk.as_("mediator", "review", "queue").stdout
    assert item in queue and "Victim" in queue and "Offender" in queue
    assert desk.world.victim.person_id not in queue and desk.world.offender.person_id not in queue
    assert "awaiting review" in queue and "just now" in queue and "KB" in queue
    assert "pending_review" not in queue and "age_seconds" not in queue and "sender_id" not in queue
    desk.as_("mediator", "review", "release", item)
    inbox = desk.as_("kiosk", "inbox").stdout
    assert item in inbox and "Victim" in inbox and "letter" in inbox and "just now" in inbox


async def test_audit_verify_defaults_to_relay_data_like_serve(desk: Desk) -> None:
    done = run("audit", "verify", cwd=desk.data_dir.parent)
    assert done.returncode == 0, done.stderr
    assert "Audit chain verified" in done.stdout


def test_the_first_start_message_names_the_real_address(tmp_path: Path) -> None:
    """On an interactive start (a terminal: the code never goes to a log), the message names the
    address the relay really listens on."""
    import pty
    import select

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "relay", "serve", "--data-dir", str(tmp_path / "d"),
                                "--port", str(port)], stderr=follower, stdout=subprocess.DEVNULL,
                               env={**os.environ, "RELAY_LANG": "en"})
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"--code" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1)
            if ready:
                try:
                    seen += os.read(leader, 4096)
                except OSError:
                    break
    finally:
        process.terminate()
        process.wait(timeout=30)
        os.close(leader)
    assert f"--url http://127.0.0.1:{port} ".encode() in seen, seen.decode(errors="replace")


# -- 10: provisioning checks whose device file it is ---------------------------------------------


async def test_provisioning_refuses_another_persons_device_file(desk: Desk, tmp_path: Path) -> None:
    people = {}
    for name in ("ann", "bob"):
        relay_cmd("keygen", "--profile", str(tmp_path / name))
        added = desk.as_("coord", "coordinator", "person", "add", "--role", "participant", "--relation", "victim",
                         "--label", name, "--keys", str(tmp_path / name / "public-keys.json"))
        people[name] = re.search(r"(per_[0-9a-f]{16})", added.stdout).group(1)  # type: ignore[union-attr]
    device = tmp_path / "ann.device.json"
    desk.as_("coord", "coordinator", "device", "add", "--kind", "participant_device", "--person", people["ann"],
             "--label", "laptop", "--out", str(device))
    refused = run("provision", str(device), "--profile", str(tmp_path / "bob"))
    no_traceback(refused)
    assert "belong to someone else" in refused.stderr
    assert not (tmp_path / "bob" / "profile.json").exists()
    relay_cmd("provision", str(device), "--profile", str(tmp_path / "ann"))
    assert "Nothing here" in relay_cmd("inbox", "--profile", str(tmp_path / "ann")).stdout
    # A terminal's file is refused in a profile that holds a person's key, and a person's in one without.
    relay_cmd("keygen", "--profile", str(tmp_path / "carl"))
    desk.as_("coord", "coordinator", "device", "add", "--kind", "terminal", "--institution",
             desk.world.institution_id, "--label", "kiosk 2", "--out", str(tmp_path / "kiosk.json"))
    assert "holds a person's key" in run("provision", str(tmp_path / "kiosk.json"), "--profile",
                                         str(tmp_path / "carl")).stderr
    assert "holds no key yet" in run("provision", str(device), "--profile", str(tmp_path / "empty")).stderr
    bad = tmp_path / "not-a-device.json"
    bad.write_text("[1, 2")
    assert "is not a device file" in run("provision", str(bad), "--profile", str(tmp_path / "x")).stderr


# -- issue 11: hidden characters are shown, and said ---------------------------------------------

HIDDEN = "Dear B,\nI hope you are well.\x1b[8m Meet me at 12 Elm St.\x1b[0m\nBye\r\x1b[2Kerased\n\u202egnp.exe\u2066\u200b\ufeff"


def test_reveal_marks_every_hidden_character() -> None:
    marked, findings = reveal(HIDDEN)
    assert "\x1b" not in marked and "\u202e" not in marked and "\u200b" not in marked and "\r" not in marked
    assert "⟦ESC⟧[8m Meet me at 12 Elm St.⟦ESC⟧[0m" in marked and "Bye⟦CR⟧⟦ESC⟧[2Kerased" in marked
    assert "⟦U+202E⟧gnp.exe⟦U+2066⟧⟦ZWSP⟧⟦BOM⟧" in marked
    assert len(findings) == 8
    assert findings[0].index == HIDDEN.index("\x1b") and findings[0].name == "ESC"
    assert "RIGHT-TO-LEFT OVERRIDE" in [f.name for f in findings]
    for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF,
                 0x0085, 0x009B, 0x00AD, 0xE0041, 0x3164]:
        assert reveal(f"a{chr(code)}b")[1], hex(code)
    assert reveal("plain text\twith tabs\r\nand CRLF lines, accents é, emoji 🙂\n") == (
        "plain text\twith tabs\r\nand CRLF lines, accents é, emoji 🙂\n", [])
    marked, findings = reveal_bytes(b"ok \xff\xfe end")
    assert marked == "ok ⟦0xFF⟧⟦0xFE⟧ end" and [f.invalid_byte for f in findings] == [True, True]


async def test_review_open_and_fetch_show_hidden_characters_and_say_so(desk: Desk, tmp_path: Path) -> None:
    item = send_letter(desk, tmp_path, HIDDEN)
    opened = desk.as_("mediator", "review", "open", item)
    assert "\x1b" not in opened.stdout and "\u202e" not in opened.stdout and "\r" not in opened.stdout
    assert "⟦ESC⟧[8m Meet me at 12 Elm St." in opened.stdout
    assert "this letter contains 8 hidden or control character(s)" in opened.stderr
    french = desk.as_("mediator", "review", "open", item, "--lang", "fr")
    assert "cette lettre contient 8 caractère(s) caché(s)" in french.stderr
    desk.as_("mediator", "review", "release", item)
    fetched = desk.as_("kiosk", "fetch", item, expect=None)
    assert fetched.returncode == 0, fetched.stderr
    assert "\x1b" not in fetched.stdout and "⟦ESC⟧" in fetched.stdout and "8 hidden" in fetched.stderr
    desk.as_("kiosk", "fetch", item, "--out", str(tmp_path / "exact.txt"))
    assert (tmp_path / "exact.txt").read_bytes() == HIDDEN.encode("utf-8")  # --out keeps the exact bytes


# -- issue 11: the CLI's structure ----------------------------------------------------------------


def test_each_group_registers_its_own_commands_and_a_new_group_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from relay.client.cli import entry as cli_main

    names = {name for group in cli_main.GROUPS for name in _commands_of(group)}
    assert {"serve", "demo", "audit", "purge", "keygen", "provision", "coordinator", "send", "resume", "sent",
            "inbox", "fetch", "note", "review", "desk", "kiosk", "app", "scrub"} <= names

    new_group = types.ModuleType("example")

    def register(sub: Any, lang: str) -> None:
        command(sub, "example", lang, "help.review").set_defaults(run=lambda args: 7)

    new_group.register = register  # type: ignore[attr-defined]
    monkeypatch.setattr(cli_main, "GROUPS", (*cli_main.GROUPS, new_group))
    assert cli_main.main(["example"]) == 7
    source = inspect.getsource(cli_main.parser)
    assert len(source.splitlines()) < 20


def _commands_of(group: types.ModuleType) -> set[str]:
    top = argparse.ArgumentParser()
    sub = top.add_subparsers()
    group.register(sub, "en")
    return set(sub.choices)
