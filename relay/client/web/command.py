"""``relay desk``, ``relay kiosk`` and ``relay app``: serve an interface on loopback, print its
one-time link (to the terminal, never to a log), and open it in this machine's browser."""

from __future__ import annotations

import argparse
import asyncio
import sys
import webbrowser
from typing import Any

from relay.client.cli.common import CliError, command
from relay.client.profile import Profile
from relay.client.web.config import DEFAULT_IDLE_SECONDS, WebConfig
from relay.i18n.cli import say

DEVICE_KIND = {"desk": "mediator_desk", "kiosk": "terminal", "app": "participant_device"}


def register(sub: Any, lang: str) -> None:
    for kind in DEVICE_KIND:
        p = command(sub, kind, lang, f"help.{kind}", profile=True)
        p.add_argument("--port", type=int, default=0, help=say("help.web.port", lang))
        p.add_argument("--idle-minutes", type=float, default=DEFAULT_IDLE_SECONDS[kind] / 60,  # type: ignore[index]
                       help=say("help.web.idle", lang))
        p.add_argument("--no-browser", action="store_true", help=say("help.web.no-browser", lang))
        p.set_defaults(run=run, web_kind=kind)


async def run(args: argparse.Namespace) -> int:
    kind = args.web_kind
    profile = Profile.load(args.profile)
    if profile.device_kind != DEVICE_KIND[kind]:
        raise CliError(say("web.wrong-device", args.lang, actual=profile.device_kind, kind=kind,
                           expected=DEVICE_KIND[kind]))
    from relay.client.web.app import NoMemoryScratch, memory_scratch_parent

    try:
        memory_scratch_parent()
    except NoMemoryScratch:
        raise CliError(say("web.no-memory", args.lang)) from None
    config = WebConfig(kind=kind, profile_dir=args.profile, port=args.port, lang=args.lang,
                       idle_seconds=max(30, int(args.idle_minutes * 60)))

    def announce(link: str) -> None:
        print(say("web.link", args.lang, link=link), file=sys.stderr, flush=True)
        if not args.no_browser:
            webbrowser.open(link)

    from relay.client.web.app import serve

    try:
        await serve(config, announce)
    except asyncio.CancelledError:
        pass
    return 0
