"""What every command group shares: registering a command, signing in, and showing results in
the person's language (tables with translated headings, sizes in MB, ages in words)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from relay import envelope
from relay.client.kdf import PRODUCTION_KDF
from relay.client.profile import IDENTITY_FILE, Profile
from relay.client.sdk import Client, VerificationError
from relay.envelope import Identity
from relay.i18n.cli import TEXT, say


class CliError(Exception):
    """A sentence for the person at the keyboard (already in their language); the command exits 1."""


# -- registering commands ---------------------------------------------------------------------


def _lang_option(lang: str) -> argparse.ArgumentParser:
    """``--lang`` on every (sub)command, so it works anywhere on the line. SUPPRESS: a subcommand
    that was not given it leaves the value from earlier on the line alone."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--lang", choices=["en", "fr"], default=argparse.SUPPRESS, help=say("help.lang", lang))
    return parent


def subcommands(parser: argparse.ArgumentParser, dest: str, lang: str) -> Any:
    return parser.add_subparsers(dest=dest, required=True, title=say("help.commands", lang), metavar="COMMAND")


def command(sub: Any, name: str, lang: str, help_key: str, *, profile: bool = False, person: bool = False,
            epilog: str | None = None) -> argparse.ArgumentParser:
    """A (sub)command with its help in ``lang``; ``profile``/``person`` add the usual options."""
    text = say(help_key, lang)
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=text, description=text, epilog=epilog, parents=[_lang_option(lang)],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    if profile:
        parser.add_argument("--profile", type=Path, required=True, help=say("help.profile", lang))
    if person:
        parser.add_argument("--person", help=say("help.person", lang))
    return parser


# -- signing in -------------------------------------------------------------------------------


def passphrase_for(lang: str, prompt: bool = True) -> str:
    secret = os.environ.get("RELAY_PASSPHRASE")
    if secret:
        return secret
    if prompt and sys.stdin.isatty():
        return getpass.getpass(say("passphrase-ask", lang))
    raise CliError(say("passphrase-missing", lang))


def load_identity(profile_dir: Path, lang: str) -> Identity:
    bundle = (profile_dir / IDENTITY_FILE).read_bytes()
    try:
        return PRODUCTION_KDF.open(bundle, passphrase_for(lang))
    except envelope.EnvelopeError:
        raise CliError(say("passphrase-wrong", lang)) from None


@asynccontextmanager
async def session(args: argparse.Namespace) -> AsyncIterator[Client]:
    """A logged-in client for the profile's person (or, on a terminal, for ``--person``)."""
    profile = Profile.load(args.profile)
    args.relay_url = profile.url  # named in the message if the relay cannot be reached
    async with Client(profile.url, profile.device_token, trust_root=profile.trust_root, lang=args.lang) as client:
        if profile.device_kind == "terminal":
            if not args.person:
                raise CliError(say("terminal-person", args.lang))
            try:
                identity = await client.unlock_on_terminal(args.person, passphrase_for(args.lang),
                                                           **PRODUCTION_KDF.open_kwargs)
            except VerificationError:
                raise CliError(say("passphrase-wrong", args.lang)) from None
            person_id = args.person
        else:
            identity = load_identity(args.profile, args.lang)
            person_id = str(profile.person_id)
        await client.login(person_id, identity)
        yield client


# -- showing results --------------------------------------------------------------------------


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def words(prefix: str, code: Any, lang: str) -> str:
    """The words for a code the relay sends (a state, a kind, a role), or the code if it is new."""
    if code is None:
        return "-"
    key = f"{prefix}.{code}"
    return say(key, lang) if key in TEXT else str(code)


def yes_no(value: Any, lang: str) -> str:
    return "-" if value is None else say("yes" if value else "no", lang)


def human_size(n: int | None, lang: str) -> str:
    """Decimal units, as people see them elsewhere: 1 MB is 1,000,000 bytes."""
    if n is None:
        return "-"
    for unit, scale in (("gb", 10**9), ("mb", 10**6), ("kb", 10**3)):
        if n >= scale:
            value = f"{n / scale:.1f}"
            return say(f"size.{unit}", lang, n=value.replace(".", ",") if lang == "fr" else value)
    return say("size.bytes", lang, n=n)


def age(seconds: float | None, lang: str) -> str:
    """'3 days', '5 hours', '12 minutes', 'just now' (the largest whole unit)."""
    if seconds is None:
        return "-"
    for unit, scale in (("day", 86400), ("hour", 3600), ("minute", 60)):
        n = int(seconds // scale)
        if n >= 1:
            return say(f"age.{unit}" + ("s" if n > 1 else ""), lang, n=n)
    return say("just-now", lang)


def since(moment: str | None, lang: str) -> str:
    """How long ago an RFC 3339 time the relay sent was, in words."""
    if not moment:
        return "-"
    try:
        then = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    return age((datetime.now(UTC) - then).total_seconds(), lang)


Column = tuple[str, "str | Callable[[dict[str, Any]], Any]"]


def table(rows: list[dict[str, Any]], columns: Iterable[Column], lang: str) -> None:
    """Rows under translated headings; a column is (heading key, field name or function of the row)."""
    if not rows:
        print(say("nothing", lang))
        return
    columns = list(columns)
    headings = [say(f"col.{key}", lang) for key, _ in columns]
    cells = [[_cell(row, get) for _, get in columns] for row in rows]
    widths = [max(len(h), *(len(line[i]) for line in cells)) for i, h in enumerate(headings)]
    print("  ".join(h.ljust(w) for h, w in zip(headings, widths, strict=True)).rstrip())
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _cell(row: dict[str, Any], get: str | Callable[[dict[str, Any]], Any]) -> str:
    value = get(row) if callable(get) else row.get(get)
    return "-" if value is None else str(value)


async def labels(client: Client, case_ids: Iterable[str]) -> dict[str, str]:
    """How each person in these cases is named (their label), from each case as the caller sees it."""
    names: dict[str, str] = {}
    for case_id in sorted(set(case_ids)):
        case = await client.call("GET", f"/v1/cases/{case_id}")
        for someone in [*case.get("participants", []), *case.get("mediators", [])]:
            if someone.get("label"):
                names[someone["id"]] = someone["label"]
    return names
