"""``relay demo``: one whole exchange, step by step, through the same client code people run.

It starts a real relay process on loopback (or uses ``--url``), then acts in turn as the
coordinator, the victim, the mediator, the offender at an institutional terminal, and checks
what each one should and should not see. It exits non-zero if any step fails, and in
particular if the recipient could list or fetch the letter before the mediator released it.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import media
from relay import envelope
from relay.client.cli.common import human_size
from relay.client.kdf import PRODUCTION_KDF
from relay.client.scenario import World, build_world
from relay.client.sdk import Client, ProblemError
from relay.client.visible import reveal_bytes
from relay.i18n.cli import language, say

BUILT_IN_LETTER = """To the person who broke into our home,

I am writing because the mediator told me you asked whether I would be willing to.
Since that night I check the locks three times before I sleep. My daughter still asks
whether you will come back. We moved to Lakeview Crescent last spring, hoping it would help.

I want you to know what it changed for us. I am not ready to forgive, and no one has
asked me to. But I would like to know why our house, and whether you think about it.

- A.
"""
# The mediator redacts the line that would tell the offender where the family lives now.
REDACT = ("We moved to Lakeview Crescent last spring, hoping it would help.",
          "[Removed by the mediator: location.]")
CODE_PATTERN = re.compile(r"\b(bst_[0-9a-f]{16}\.[A-Za-z0-9_-]+)")


class DemoFailure(Exception):
    """A step did not do what it must."""


# Left for the desk by ``relay demo --keep``: it hides a line from a terminal (ESC [8m conceals),
# which the desk shows and counts.
KEPT_LETTER = ("I have read what you wrote, and I have questions of my own.\n"
               "Why our street?\x1b[8m Call me at 555-0142.\x1b[0m\n"
               "I would like an answer in writing.\n")

LANG = "en"  # the narration's language, set by run() from --lang, RELAY_LANG or LANG


def step(number: int | str, key: str, **values: object) -> None:
    print(f"\n[{number}] {say(key, LANG, **values)}", flush=True)


def detail(key: str, **values: object) -> None:
    print(f"    {say(key, LANG, **values)}", flush=True)


@dataclass
class RunningRelay:
    url: str
    code: str | None  # None when the data directory already had a coordinator
    process: asyncio.subprocess.Process


@asynccontextmanager
async def local_relay(data_dir: Path, port: int | None = None, *, serve_args: tuple[str, ...] = ()
                      ) -> AsyncIterator[RunningRelay]:
    """Start ``relay serve`` as a child process on a free loopback port, and stop it after."""
    if port is None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "relay", "serve", "--data-dir", str(data_dir), "--port", str(port), *serve_args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    code = None
    try:
        async with asyncio.timeout(30):
            while True:
                line = (await process.stderr.readline()).decode("utf-8", "replace")
                if not line:
                    raise DemoFailure("the relay stopped during start-up")
                if match := CODE_PATTERN.search(line):
                    code = match.group(1)
                if "Running on" in line:
                    break
        # stderr is a pipe here, not a terminal: the relay wrote its first-start code to a
        # private file in its data directory rather than to what may be a log.
        code_file = data_dir / "first-start-code"
        if code is None and code_file.is_file():
            code = code_file.read_text("utf-8").strip()
        drain = asyncio.create_task(_drain(process.stderr))
        yield RunningRelay(f"http://127.0.0.1:{port}", code, process)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        if "drain" in locals():
            drain.cancel()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def run(args: argparse.Namespace) -> int:
    global LANG
    LANG = language(getattr(args, "lang", None))
    try:
        if args.url:
            if not args.code:
                raise DemoFailure(say("demo.url-needs-code", LANG))
            await exchange(args.url, args.code, args, None)
        else:
            stay = getattr(args, "keep", None)
            if stay is not None:
                args.data_dir = args.data_dir or stay / "data"
            keep = args.data_dir is not None
            data_dir = (args.data_dir or Path(tempfile.mkdtemp(prefix="relay-demo-")) / "data").resolve()
            step(0, "demo.start", path=data_dir)
            try:
                async with local_relay(data_dir) as running:
                    detail("demo.listening", url=running.url)
                    if running.code is None:
                        raise DemoFailure(say("demo.has-coordinator", LANG, path=data_dir))
                    world = await exchange(running.url, running.code, args, data_dir)
                    await check_audit(data_dir)
                    if stay is not None:
                        await open_the_desk(world, stay.resolve(), no_browser=getattr(args, "no_browser", False))
            finally:
                if not keep:
                    shutil.rmtree(data_dir.parent, ignore_errors=True)
    except (DemoFailure, ProblemError) as exc:
        print("\n" + say("demo.failed", LANG, reason=exc), file=sys.stderr)
        return 1
    print("\n" + say("demo.worked", LANG))
    return 0


async def exchange(url: str, code: str, args: argparse.Namespace, data_dir: Path | None) -> World:
    letter = args.letter.read_bytes() if args.letter else BUILT_IN_LETTER.encode("utf-8")
    step(1, "demo.1")
    world = await build_world(url, code, kdf=PRODUCTION_KDF)
    detail("demo.1.coordinator", root=envelope.b64e(world.coordinator.identity.public.sign_pk)[:12])
    detail("demo.1.people")
    detail("demo.1.case", id=world.case_id)

    step(2, "demo.2")
    victim = await world.session(world.victim)
    sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(letter))
    detail("demo.2.sent", id=sent["id"], status=sent["status"][LANG])
    detail("demo.2.keys")

    step(3, "demo.3")
    offender = await world.session(world.offender, on_terminal=True)
    if await offender.call("GET", "/v1/inbox"):
        raise DemoFailure("the recipient could list the letter before its release")
    try:
        await offender.call("GET", f"/v1/items/{sent['id']}/delivery")
        raise DemoFailure("the recipient could fetch the letter before its release")
    except ProblemError as refused:
        detail("demo.3.refused", status=refused.status, type=refused.type)

    step(4, "demo.4")
    mediator = await world.session(world.mediator)
    queue = await mediator.call("GET", "/v1/review/queue")
    detail("demo.4.queue", items=", ".join(f"{q['id']} ({say('kind.' + q['kind'], LANG)})" for q in queue))
    original = io.BytesIO()
    await mediator.open_item(sent["id"], original)
    text = original.getvalue().decode("utf-8", "replace")
    if args.letter is None and REDACT[0] in text:
        rendition = text.replace(*REDACT).encode("utf-8")
        detail("demo.4.redact")
    else:
        rendition = original.getvalue()
        detail("demo.4.as-written")
    await mediator.release(sent["id"], rendition=io.BytesIO(rendition))
    detail("demo.4.released")

    step(5, "demo.5")
    inbox = await offender.call("GET", "/v1/inbox")
    if [i["id"] for i in inbox] != [sent["id"]]:
        raise DemoFailure("the released letter is not in the recipient's inbox")
    received = io.BytesIO()
    await offender.fetch(sent["id"], received)
    if received.getvalue() != rendition:
        raise DemoFailure("the recipient did not receive exactly the released rendition")
    shown, hidden = reveal_bytes(received.getvalue())  # what a terminal shows is what the letter holds
    print("\n" + "\n".join("    | " + line for line in shown.splitlines()))
    if hidden:
        detail("demo.5.hidden", n=len(hidden))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{sent['id']}.txt").write_bytes(received.getvalue())
        detail("demo.5.saved", path=args.out / (sent["id"] + ".txt"))

    step(6, "demo.6")
    mine = (await victim.call("GET", "/v1/items/sent"))[0]
    detail("demo.6.opened", status=mine["status"][LANG], when=mine["first_opened_at"])
    if mine["state"] != "delivered":
        raise DemoFailure("the sender does not see the delivery")

    if args.video:
        await video_exchange(args, world_case=world.case_id, offender_id=world.offender.person_id, victim=victim,
                             mediator=mediator, offender=offender)

    for client in (victim, offender, mediator):
        await client.close()

    if data_dir is not None:
        step(7, "demo.7")
        needle = max(letter.splitlines(), key=len)
        for path in data_dir.rglob("*"):
            if path.is_file() and needle in path.read_bytes():
                raise DemoFailure(f"plaintext found in {path}")
        detail("demo.7.clean", path=data_dir)
    return world


async def open_the_desk(world: World, where: Path, *, no_browser: bool) -> None:
    """``relay demo --keep DIR``: leave the relay running with profiles for the mediator's desk,
    the kiosk and the victim's app in DIR, a new letter waiting for review, and the desk open."""
    from relay.client import passphrase
    from relay.client.profile import IDENTITY_FILE, Profile, write_private
    from relay.client.web.app import start as start_interface
    from relay.client.web.config import WebConfig

    # One passphrase a person, as in real life: the desk's and the app's are not the same.
    secrets = {"desk": passphrase.generate(), "app": passphrase.generate()}
    profiles = {}
    for name, kind, someone, token in (("desk", "mediator_desk", world.mediator, world.mediator.device_token),
                                       ("app", "participant_device", world.victim, world.victim.device_token),
                                       ("kiosk", "terminal", None, world.terminal_token)):
        directory = where / name
        Profile(url=world.url, device_id=str(token).split(".", 1)[0], device_token=str(token), device_kind=kind,
                trust_root=world.trust_root, person_id=someone.person_id if someone else None).save(directory)
        if someone is not None:
            write_private(directory / IDENTITY_FILE, PRODUCTION_KDF.seal(someone.identity, secrets[name]))
        profiles[name] = directory
    victim = await world.session(world.victim)
    try:
        await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                          src=io.BytesIO(KEPT_LETTER.encode("utf-8")))
    finally:
        await victim.close()
    desk = await start_interface(WebConfig(kind="desk", profile_dir=profiles["desk"], lang=LANG))
    try:
        print("\n" + say("demo.keep", LANG, link=desk.link, passphrase=secrets["desk"],
                          app_passphrase=secrets["app"], where=where,
                          code=world.offender.kiosk_code, offender_passphrase=world.offender.passphrase,
                          relay=world.url), file=sys.stderr, flush=True)
        if not no_browser:
            import webbrowser

            webbrowser.open(desk.link)
        await asyncio.Event().wait()  # until Ctrl-C
    finally:
        await desk.stop()


async def video_exchange(args: argparse.Namespace, *, world_case: str, offender_id: str, victim: Client,
                         mediator: Client, offender: Client) -> None:
    step("6.1", "demo.61", name=args.video.name)
    with open(args.video, "rb") as src:
        sent = await victim.send(case_id=world_case, recipient=offender_id, src=src, kind="video",
                                 content_type="video/mp4", resumable=True,
                                 progress=lambda done, total: None)
    detail("demo.2.sent", id=sent["id"], status=sent["status"][LANG])
    step("6.2", "demo.62")
    last = [0.0]

    def report(done: float, total: float) -> None:
        if done > last[0] and (done - last[0] >= max(total / 4, 0.5) or done >= total):
            last[0] = done
            detail("demo.62.progress", done=done, total=total)

    await mediator.release(sent["id"], transcode_progress=report)
    detail("demo.62.released")
    step("6.3", "demo.63")
    with tempfile.TemporaryDirectory() as scratch:
        received = Path(scratch) / "video.mp4"
        with open(received, "wb") as out:
            view = await offender.fetch(sent["id"], out)
        if view["content_type"] != "video/mp4":
            raise DemoFailure("the delivered video is not the sanitized MP4 rendition")
        info = await media.probe(received)
        try:  # the desk's own rendition check, run again on what the recipient got
            media.check_rendition(info, source=await media.probe(args.video))
        except media.MediaError as exc:
            raise DemoFailure(f"the delivered video is not a clean rendition: {exc}") from None
        detail("demo.63.delivered", w=info.video.width, h=info.video.height,
               size=human_size(received.stat().st_size, LANG))
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(received, args.out / f"{sent['id']}.mp4")
            detail("demo.63.saved", path=args.out / (sent["id"] + ".mp4"))


async def check_audit(data_dir: Path) -> None:
    from storage import audit
    from storage.db import Database

    step(8, "demo.8")
    db = await Database.open(data_dir / "relay.sqlite3", readers=1)
    try:
        result = await audit.verify(db)
        actions = [e["action"] for e in await audit.entries(db)]
    finally:
        await db.close()
    if not result.ok:
        raise DemoFailure(f"audit chain broken: {result.problem}")
    detail("demo.8.ok", n=result.entries, head=result.head[:16], actions=", ".join(dict.fromkeys(actions)))
