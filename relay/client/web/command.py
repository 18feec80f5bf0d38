"""``relay desk``, ``relay kiosk`` and ``relay app``: serve an interface on loopback, print its
one-time link (to the terminal, never to a log), and open it in this machine's browser."""

from __future__ import annotations

import argparse
import asyncio
import sys
import webbrowser
from pathlib import Path

from relay.client.profile import Profile
from relay.client.web.config import DEFAULT_IDLE_SECONDS, WebConfig

KINDS = {
    "desk": ("the mediator's desk, in this computer's browser / le poste du médiateur, dans le navigateur",
             "mediator_desk"),
    "kiosk": ("an institution's kiosk, for the participant in front of it / la borne d'un établissement",
              "terminal"),
    "app": ("a participant's own app / l'application d'un participant", "participant_device"),
}

LINK = {
    "en": "Open this link in this computer's browser (it works once; keep it private):",
    "fr": "Ouvrez ce lien dans le navigateur de cet ordinateur (il ne sert qu'une fois; gardez-le privé) :",
}
WRONG_DEVICE = {
    "en": "This profile is for a {actual} device; relay {kind} needs a {expected} profile.",
    "fr": "Ce profil est celui d'un appareil {actual}; relay {kind} demande un profil {expected}.",
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for kind, (help_text, _device) in KINDS.items():
        p = sub.add_parser(kind, help=help_text)
        p.add_argument("--profile", type=Path, required=True, help="this device's profile directory / profil")
        p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
        p.add_argument("--idle-minutes", type=float, default=DEFAULT_IDLE_SECONDS[kind] / 60,  # type: ignore[index]
                       help="sign out after this long without activity / délai d'inactivité")
        p.add_argument("--no-browser", action="store_true", help="only print the link / afficher le lien seulement")
        p.set_defaults(run=run, web_kind=kind)


async def run(args: argparse.Namespace) -> int:
    kind = args.web_kind
    profile = Profile.load(args.profile)
    expected = KINDS[kind][1]
    if profile.device_kind != expected:
        print(WRONG_DEVICE[args.lang].format(actual=profile.device_kind, kind=kind, expected=expected),
              file=sys.stderr)
        return 1
    config = WebConfig(kind=kind, profile_dir=args.profile, port=args.port, lang=args.lang,
                       idle_seconds=max(30, int(args.idle_minutes * 60)))

    def announce(link: str) -> None:
        print(f"{LINK[args.lang]}\n\n    {link}\n", file=sys.stderr, flush=True)
        if not args.no_browser:
            webbrowser.open(link)

    from relay.client.web.app import serve

    try:
        await serve(config, announce)
    except asyncio.CancelledError:
        pass
    return 0
