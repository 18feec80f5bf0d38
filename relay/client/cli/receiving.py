"""Receiving: ``inbox``, ``fetch`` (a released item, verified), ``note`` (a returned item's note)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from relay.client.cli.common import command, labels, session, since, table, words
from relay.client.cli.content import show_or_write
from relay.client.progress import Bar
from relay.i18n.cli import say


def register(sub: Any, lang: str) -> None:
    p = command(sub, "inbox", lang, "help.inbox", profile=True, person=True)
    p.set_defaults(run=cmd_inbox)
    for name, func, help_key in (("fetch", cmd_fetch, "help.fetch"), ("note", cmd_note, "help.note")):
        p = command(sub, name, lang, help_key, profile=True, person=True)
        p.add_argument("item", help=say("help.item", lang))
        p.add_argument("--out", type=Path, help=say("help.out", lang))
        p.set_defaults(run=func)


async def cmd_inbox(args: argparse.Namespace) -> int:
    lang = args.lang
    async with session(args) as client:
        rows = await client.call("GET", "/v1/inbox")
        names = await labels(client, (r["case_id"] for r in rows))
    table(rows, [("id", "id"), ("kind", lambda r: words("kind", r["kind"], lang)),
                 ("from", lambda r: names.get(r["sender_id"], r["sender_id"])),
                 ("released", lambda r: since(r.get("decided_at"), lang)),
                 ("opened", lambda r: since(r.get("first_opened_at"), lang) if r.get("first_opened_at")
                  else say("no", lang))], lang)
    return 0


async def cmd_fetch(args: argparse.Namespace) -> int:
    async with session(args) as client:
        # What the release says it delivers, to choose how to show it before fetching (the
        # fetch verifies the same signed release).
        delivery = (await client.call("GET", f"/v1/items/{args.item}/delivery"))["decision"].get("delivery") or {}
        fetched: dict[str, Any] = {}

        async def fetch(dst: Any) -> None:
            fetched.update(await client.fetch(args.item, dst, progress=Bar("download", lang=args.lang)))

        await show_or_write(args.out, fetch, content_type=delivery.get("content_type"), size=delivery.get("size"),
                            done_key="fetched-release", lang=args.lang)
        sender = fetched.get("sender") or {}
        if sender:  # verified under the mediator's signature, along the enrollment chain
            print(say("fetched-sender", args.lang, id=sender.get("id"), fingerprint=str(sender.get("fingerprint"))[:16]),
                  file=sys.stderr)
    return 0


async def cmd_note(args: argparse.Namespace) -> int:
    async with session(args) as client:
        await show_or_write(args.out, lambda dst: client.read_note(args.item, dst), content_type="text/plain",
                            size=None, done_key="fetched-note", lang=args.lang)
    return 0
