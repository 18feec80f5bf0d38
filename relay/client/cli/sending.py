"""Sending: ``send``, ``resume`` (the outbox after a lost connection), ``sent``."""

from __future__ import annotations

import argparse
import mimetypes
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from relay.client.cli.common import CliError, command, labels, session, since, table
from relay.client.profile import Profile, private_dir
from relay.client.progress import Bar
from relay.client.sdk import Client
from relay.i18n.cli import say

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".webm", ".mkv"}
_ITEM_ID = re.compile(r"^itm_[0-9a-f]{16}$")


def register(sub: Any, lang: str) -> None:
    p = command(sub, "send", lang, "help.send", profile=True, person=True)
    p.add_argument("file", type=Path, help=say("help.send.file", lang))
    p.add_argument("--case", required=True, help=say("help.send.case", lang))
    p.add_argument("--to", required=True, help=say("help.send.to", lang))
    p.add_argument("--kind", choices=["letter", "video"], help=say("help.send.kind", lang))
    p.add_argument("--content-type", help=say("help.send.content-type", lang))
    p.add_argument("--shrink", action="store_true", help=say("help.send.shrink", lang))
    p.set_defaults(run=cmd_send)

    p = command(sub, "resume", lang, "help.resume", profile=True, person=True)
    p.add_argument("--drop", metavar="ITEM", help=say("help.resume.drop", lang))
    p.set_defaults(run=cmd_resume)

    p = command(sub, "sent", lang, "help.sent", profile=True, person=True)
    p.set_defaults(run=cmd_sent)


async def cmd_send(args: argparse.Namespace) -> int:
    kind = args.kind or ("video" if args.file.suffix.lower() in VIDEO_SUFFIXES else "letter")
    content_type = args.content_type or mimetypes.guess_type(args.file.name)[0] or (
        "video/mp4" if kind == "video" else "text/plain; charset=utf-8")
    Profile.load(args.profile)  # a mistyped --profile or file is said before any passphrase is asked
    with open(args.file, "rb") as src:
        async with session(args) as client:
            result = await client.send(case_id=args.case, recipient=args.to, src=src, kind=kind,
                                       content_type=content_type, progress=Bar("upload", lang=args.lang), outbox=outbox(args, client),
                                       shrink=args.shrink, transcode_progress=Bar("shrinking", unit="s", lang=args.lang),
                                       seal_progress=Bar("sealing", lang=args.lang))
    print(say("sent", args.lang, id=result["id"], status=result["status"][args.lang]))
    return 0


def outbox(args: argparse.Namespace, client: Client) -> Path:
    """Ciphertext waiting for the relay's acknowledgement: per person (a kiosk serves many)."""
    return private_dir(args.profile / "outbox" / str(client.person_id))


async def cmd_resume(args: argparse.Namespace) -> int:
    """Finish sends that a lost connection or a stopped client left unfinished; say which failed."""
    if args.drop:
        return _drop(args)
    async with session(args) as client:
        finished = await client.resume_outbox(outbox(args, client), progress=Bar("upload", lang=args.lang))
    if not finished:
        print(say("nothing", args.lang))
    failed = 0
    for result in finished:
        if "error" in result:
            failed += 1
            print(say("resume-failed", args.lang, id=result["id"], reason=result["error"]), file=sys.stderr)
        elif result.get("already_sent"):
            print(say("resume-already", args.lang, id=result["id"]))
        else:
            status = (result.get("status") or {}).get(args.lang) or "-"
            print(say("sent", args.lang, id=result["id"], status=status))
    return 1 if failed else 0


def _drop(args: argparse.Namespace) -> int:
    """Remove one unsent entry; no sign-in (it is this device's own file), but only the person's
    own outbox (a kiosk's ``--person``) and only a real item id, never a path."""
    profile = Profile.load(args.profile)
    person = args.person if profile.device_kind == "terminal" else profile.person_id
    if profile.device_kind == "terminal" and not person:
        raise CliError(say("terminal-person", args.lang))
    entry = args.profile / "outbox" / str(person) / args.drop
    if not _ITEM_ID.match(args.drop) or not entry.is_dir():
        raise CliError(say("resume-no-entry", args.lang, id=args.drop))
    shutil.rmtree(entry)
    print(say("resume-dropped", args.lang, id=args.drop))
    return 0


async def cmd_sent(args: argparse.Namespace) -> int:
    lang = args.lang
    async with session(args) as client:
        rows = await client.call("GET", "/v1/items/sent")
        names = await labels(client, (r["case_id"] for r in rows))
    table(rows, [
        ("id", "id"),
        ("to", lambda r: say("to-mediators", lang) if r["to_mediators"]
         else names.get(r["recipient_id"], r["recipient_id"])),
        ("sent", lambda r: since(r.get("submitted_at"), lang)),
        ("status", lambda r: r["status"][lang]), ("opened", "first_opened_at")], lang)
    return 0
