"""The mediator's desk: ``relay review queue|inbox|open|release|return|withhold|read|write``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from relay import i18n
from relay.client.cli.common import CliError, age, command, human_size, labels, session, table, words
from relay.client.cli.content import into_place, show_or_write
from relay.client.profile import Profile
from relay.client.progress import Bar
from relay.client.sdk import Client
from relay.i18n.cli import say
from relay.wire import WITHHOLD_REASONS


def register(sub: Any, lang: str) -> None:
    reasons = "\n".join(f"  {code:<26} {i18n.text('withhold.' + code, lang)}" for code in WITHHOLD_REASONS)
    p = command(sub, "review", lang, "help.review", profile=True,
                epilog=f"{say('help.review.reasons', lang)}\n{reasons}")
    p.add_argument("action", choices=["queue", "inbox", "open", "release", "return", "withhold", "read", "write"],
                   help=say("help.review.action", lang))
    p.add_argument("item", nargs="?", help=say("help.item", lang))
    p.add_argument("--out", type=Path, help=say("help.out", lang))
    p.add_argument("--rendition", type=Path, help=say("help.review.rendition", lang))
    p.add_argument("--note", help=say("help.review.note", lang))
    p.add_argument("--reason", choices=WITHHOLD_REASONS, metavar="REASON", help=say("help.review.reason", lang))
    p.add_argument("--case", help=say("help.review.case", lang))
    p.add_argument("--to", help=say("help.review.to", lang))
    p.add_argument("--file", type=Path, help=say("help.review.file", lang))
    p.add_argument("--posters", type=Path, help=say("help.review.posters", lang))
    p.set_defaults(run=cmd_review)


_NEEDS_ITEM = ("open", "release", "return", "withhold", "read")


async def cmd_review(args: argparse.Namespace) -> int:
    lang = args.lang
    action = args.action
    if action in _NEEDS_ITEM and not args.item:
        raise CliError(say("item-needed", lang))
    if action == "return" and not args.note:
        raise CliError(say("needed", lang, what="--note"))
    if action == "withhold" and not args.reason:
        raise CliError(say("needed", lang, what="--reason"))
    if action == "write" and not (args.case and args.to and args.file):
        raise CliError(say("needed", lang, what="--case, --to, --file"))
    if action == "write":
        Profile.load(args.profile)  # a mistyped --profile or file is said before any passphrase is asked
        with open(args.file, "rb") as src:
            async with session(args) as client:
                result = await client.send(case_id=args.case, recipient=args.to, src=src, progress=Bar("upload", lang=args.lang),
                                           seal_progress=Bar("sealing", lang=args.lang))
        print(say("sent", lang, id=result["id"], status=result["status"][lang]))
        return 0
    async with session(args) as client:
        if action == "queue":
            await _queue(client, args)
        elif action == "inbox":
            rows = await client.call("GET", "/v1/review/inbox")
            names = await labels(client, (r["case_id"] for r in rows))
            table(rows, [("id", "id"), ("case", "case_id"), ("kind", lambda r: words("kind", r["kind"], lang)),
                         ("from", lambda r: names.get(r["sender_id"], r["sender_id"])),
                         ("state", lambda r: words("state", r["state"], lang)),
                         ("waiting", lambda r: age(r.get("age_seconds"), lang))], lang)
        elif action in ("open", "read"):
            item = await client.call("GET", f"/v1/items/{args.item}")
            manifest = item["manifest"]
            await show_or_write(args.out, lambda dst: client.open_item(args.item, dst, progress=Bar("download", lang=args.lang)),
                                content_type=manifest.get("content_type"), size=manifest.get("size"),
                                done_key="fetched-original", lang=lang)
            if action == "read":  # a letter to the mediators, now read
                await client.call("POST", f"/v1/items/{args.item}/read")
                print(say("marked-read", lang, id=args.item), file=sys.stderr)
        elif action == "release":
            sanitizing = Bar("sanitizing", unit="s", lang=args.lang)
            if args.rendition:
                with open(args.rendition, "rb") as rendition:
                    await client.release(args.item, rendition, progress=Bar("upload", lang=args.lang), transcode_progress=sanitizing,
                                         seal_progress=Bar("sealing", lang=args.lang))
            else:
                await client.release(args.item, progress=Bar("upload", lang=args.lang), transcode_progress=sanitizing,
                                     seal_progress=Bar("sealing", lang=args.lang))
            print(say("released", lang, id=args.item))
        elif action == "return":
            await client.return_to_sender(args.item, args.note)
            print(say("returned", lang, id=args.item))
        elif action == "withhold":
            await client.withhold(args.item, args.reason)
            print(say("withheld", lang, id=args.item, reason=i18n.text("withhold." + args.reason, lang)))
    return 0


async def _queue(client: Client, args: argparse.Namespace) -> None:
    lang = args.lang
    queue = await client.call("GET", "/v1/review/queue")
    names = await labels(client, (q["case_id"] for q in queue))

    def flags(row: dict[str, Any]) -> str:
        found = []
        if row.get("awaiting_approval"):
            found.append(say("flag.awaiting-approval", lang))
        if row.get("hold_code"):
            found.append(words("hold", row["hold_code"], lang))
        if row.get("has_poster"):
            found.append(say("flag.poster", lang))
        return "; ".join(found) or "-"

    table(queue, [("id", "id"), ("case", "case_id"), ("kind", lambda r: words("kind", r["kind"], lang)),
                  ("from", lambda r: names.get(r["sender_id"], r["sender_id"])),
                  ("to", lambda r: say("to-mediators", lang) if r.get("recipient_id") is None
                   else names.get(r["recipient_id"], r["recipient_id"])),
                  ("state", lambda r: words("state", r["state"], lang)),
                  ("waiting", lambda r: age(r.get("age_seconds"), lang)),
                  ("size", lambda r: human_size(r.get("size"), lang)), ("flags", flags)], lang)
    if args.posters is not None:
        await _write_posters(client, [q["id"] for q in queue if q["has_poster"]], args.posters, lang)


async def _write_posters(client: Client, item_ids: list[str], into: Path, lang: str) -> None:
    """Each video's poster frame as INTO/ITEM.jpg, verified and decrypted (private files)."""
    into.mkdir(parents=True, exist_ok=True, mode=0o700)
    for item_id in item_ids:
        await into_place(into / f"{item_id}.jpg", lambda out, item_id=item_id: client.poster(item_id, out))
    print(say("posters-written", lang, n=len(item_ids), path=into))
