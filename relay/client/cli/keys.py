"""A person's keys and a device's set-up: ``keygen`` and ``provision``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from relay import envelope
from relay.client import passphrase
from relay.client.cli.common import CliError, command
from relay.client.kdf import PRODUCTION_KDF
from relay.client.profile import IDENTITY_FILE, PROFILE_FILE, PUBLIC_KEYS_FILE, Profile, private_dir, write_private
from relay.envelope import Identity, PublicIdentity
from relay.i18n.cli import say


def register(sub: Any, lang: str) -> None:
    p = command(sub, "keygen", lang, "help.keygen", profile=True)
    p.add_argument("--out", type=Path, help=say("help.keygen.out", lang))
    p.set_defaults(run=cmd_keygen)

    p = command(sub, "provision", lang, "help.provision", profile=True)
    p.add_argument("file", type=Path, help=say("help.provision.file", lang))
    p.set_defaults(run=cmd_provision)


def new_passphrase(lang: str) -> str:
    """RELAY_PASSPHRASE, or six fresh words shown once (on stderr, never logged)."""
    secret = os.environ.get("RELAY_PASSPHRASE") or passphrase.generate()
    if not os.environ.get("RELAY_PASSPHRASE"):
        show_passphrase(secret, lang)
    return secret


def show_passphrase(secret: str, lang: str, key: str = "passphrase-new") -> None:
    print(say(key, lang), file=sys.stderr)
    print(f"\n    {secret}\n", file=sys.stderr)


def public_keys(identity: PublicIdentity) -> dict[str, str]:
    return {"sign_pk": envelope.b64e(identity.sign_pk), "box_pk": envelope.b64e(identity.box_pk),
            "fingerprint": identity.fingerprint()}


async def cmd_keygen(args: argparse.Namespace) -> int:
    """Make this person's keys on their own device; print the public half for enrollment."""
    directory = private_dir(args.profile)
    if (directory / IDENTITY_FILE).exists():
        raise CliError(say("profile-exists", args.lang, path=directory))
    identity = Identity.generate()
    write_private(directory / IDENTITY_FILE, PRODUCTION_KDF.seal(identity, new_passphrase(args.lang)))
    out = args.out or directory / PUBLIC_KEYS_FILE
    out.write_text(json.dumps(public_keys(identity.public), indent=2))
    print(say("keys-written", args.lang, path=directory, pub=out))
    return 0


async def cmd_provision(args: argparse.Namespace) -> int:
    """Set a device up from its device file, refusing a file meant for someone else's profile
    (which would otherwise only fail later, at sign-in, with a bare 401)."""
    try:
        data = json.loads(args.file.read_text("utf-8"))
        profile = Profile.from_dict(data)
    except (ValueError, TypeError):
        raise CliError(say("bad-device-file", args.lang, path=args.file)) from None
    directory = args.profile
    _check_fits(directory, profile, data.get("person_fingerprint"), args.lang)
    profile.save(directory)
    print(say("provisioned", args.lang, path=directory))
    return 0


def _check_fits(directory: Path, profile: Profile, fingerprint: Any, lang: str) -> None:
    """The device file names its person (and, from this version on, their key's fingerprint, as
    the coordinator's console verified it); the profile's keys and any earlier set-up name theirs."""
    if (directory / PROFILE_FILE).is_file():
        try:
            earlier = Profile.load(directory)
        except ValueError:
            earlier = None
        if earlier is not None and earlier.person_id != profile.person_id:
            raise CliError(say("device-profile-other", lang, path=directory, person=profile.person_id or "-",
                               other=earlier.person_id or "-"))
    has_key = (directory / IDENTITY_FILE).exists()
    if profile.device_kind == "terminal" or profile.person_id is None:
        if has_key:
            raise CliError(say("device-terminal-keys", lang, path=directory))
        return
    if not has_key:
        raise CliError(say("device-needs-keys", lang, path=directory))
    keys_file = directory / PUBLIC_KEYS_FILE
    if isinstance(fingerprint, str) and keys_file.is_file():
        try:
            keys = json.loads(keys_file.read_text("utf-8"))
            mine = PublicIdentity(envelope.b64d(keys["sign_pk"]), envelope.b64d(keys["box_pk"])).fingerprint()
        except (ValueError, KeyError, TypeError):
            mine = None
        if mine != fingerprint:
            raise CliError(say("device-other-person", lang, person=profile.person_id, path=directory))
