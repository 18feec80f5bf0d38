"""The ``relay`` command: run the server, and act as coordinator, participant, mediator or terminal.

Every person-facing command logs in afresh (challenge signed with the person's key), does its
work, and signs out; the unlocked key lives only in this process. Passphrases come from
``RELAY_PASSPHRASE`` or a prompt; tokens and keys are never printed except the one-time
secrets a person must hand over (a new device's file, a generated passphrase).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import io
import json
import logging
import mimetypes
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from media import MediaError
from relay import envelope
from relay.client import passphrase
from relay.client.kdf import PRODUCTION_KDF
from relay.client.profile import IDENTITY_FILE, PROFILE_FILE, Profile, private_dir, write_private
from relay.client.progress import Bar
from relay.client.sdk import Client, InsecureTransport, OverLimit, ProblemError, VerificationError, bootstrap
from relay.envelope import Identity
from relay.i18n.cli import language, say
from relay.server import admin, retention_config


class CliError(Exception):
    """A message for the person at the keyboard; the command exits 1."""


# -- helpers ----------------------------------------------------------------------------------


def _passphrase(lang: str, prompt: bool = True) -> str:
    secret = os.environ.get("RELAY_PASSPHRASE")
    if secret:
        return secret
    if prompt and sys.stdin.isatty():
        return getpass.getpass(say("passphrase-ask", lang))
    raise CliError(say("passphrase-missing", lang))


def _new_passphrase(lang: str) -> str:
    secret = os.environ.get("RELAY_PASSPHRASE") or passphrase.generate()
    if not os.environ.get("RELAY_PASSPHRASE"):
        print(say("passphrase-new", lang), file=sys.stderr)
        print(f"\n    {secret}\n", file=sys.stderr)
    return secret


def _load_identity(profile_dir: Path, lang: str) -> Identity:
    bundle = (profile_dir / IDENTITY_FILE).read_bytes()
    try:
        return PRODUCTION_KDF.open(bundle, _passphrase(lang))
    except envelope.EnvelopeError:
        raise CliError(say("passphrase-wrong", lang)) from None


@asynccontextmanager
async def _session(args: argparse.Namespace) -> AsyncIterator[Client]:
    """A logged-in client for the profile's person (or, on a terminal, for ``--person``)."""
    profile = Profile.load(args.profile)
    async with Client(profile.url, profile.device_token, trust_root=profile.trust_root, lang=args.lang) as client:
        if profile.device_kind == "terminal":
            if not args.person:
                raise CliError("--person is required on a terminal / --person est requis sur une borne")
            try:
                identity = await client.unlock_on_terminal(args.person, _passphrase(args.lang),
                                                           **PRODUCTION_KDF.open_kwargs)
            except VerificationError:
                raise CliError(say("passphrase-wrong", args.lang)) from None
            person_id = args.person
        else:
            identity = _load_identity(args.profile, args.lang)
            person_id = str(profile.person_id)
        await client.login(person_id, identity)
        yield client


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _table(rows: list[dict[str, Any]], columns: list[str], lang: str) -> None:
    if not rows:
        print(say("nothing", lang))
        return
    widths = {c: max(len(c), *(len(str(r.get(c) if r.get(c) is not None else "-")) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c) if row.get(c) is not None else "-").ljust(widths[c]) for c in columns))


# -- server and operator commands -------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web
    from pydantic import ValidationError

    from relay.server.app import create_app
    from relay.server.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = Settings(data_dir=args.data_dir.resolve(), host=args.host, port=args.port,
                            retention_file=args.retention.resolve() if args.retention else None,
                            purge_interval_seconds=args.purge_interval, purge_duty=args.purge_duty)
    except ValidationError as exc:
        wrong = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        print(f"relay: {wrong}", file=sys.stderr)
        return 2
    try:
        retention_config.load(settings.retention_file)  # refuse to start on a bad schedule, saying where
    except retention_config.ScheduleError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    # The access log names no client address or user agent: where a participant connects from
    # is a location, and the relay has no use for it.
    web.run_app(create_app(settings), host=settings.host, port=settings.port,
                access_log_format='%t "%r" %s %b %Tf',
                print=lambda msg: print(msg, file=sys.stderr, flush=True))
    return 0


async def cmd_audit(args: argparse.Namespace) -> int:
    if args.action == "verify":
        return await admin.verify(_data_dir(args), args.expect_head, args.lang)
    if args.action == "export":
        if args.out is None:
            raise CliError("--out FILE is needed / --out FICHIER est requis")
        return await admin.export(_data_dir(args), args.out, args.format, args.lang)
    if args.file is None:
        raise CliError("name the export to check / indiquez l'export à vérifier")
    return admin.verify_export(args.file, args.expect_head, args.lang)


async def cmd_purge(args: argparse.Namespace) -> int:
    return await admin.purge(_data_dir(args), args.retention.resolve() if args.retention else None,
                                dry_run=args.dry_run, limit=args.limit, lang=args.lang)


def _data_dir(args: argparse.Namespace) -> Path:
    if args.data_dir is None:
        raise CliError("--data-dir is needed / --data-dir est requis")
    return Path(args.data_dir)


# -- keys and devices -------------------------------------------------------------------------


async def cmd_keygen(args: argparse.Namespace) -> int:
    """Make this person's keys on their own device; print the public half for enrollment."""
    directory = private_dir(args.profile)
    if (directory / IDENTITY_FILE).exists():
        raise CliError(f"{directory / IDENTITY_FILE} exists already / existe déjà")
    identity = Identity.generate()
    write_private(directory / IDENTITY_FILE, PRODUCTION_KDF.seal(identity, _new_passphrase(args.lang)))
    public = {"sign_pk": envelope.b64e(identity.public.sign_pk), "box_pk": envelope.b64e(identity.public.box_pk),
              "fingerprint": identity.public.fingerprint()}
    out = args.out or directory / "public-keys.json"
    out.write_text(json.dumps(public, indent=2))
    print(say("keys-written", args.lang, path=directory, pub=out))
    return 0


async def cmd_provision(args: argparse.Namespace) -> int:
    data = json.loads(args.file.read_text("utf-8"))
    Profile(**data).save(args.profile)
    print(say("provisioned", args.lang, path=args.profile))
    return 0


# -- coordinator ------------------------------------------------------------------------------


async def cmd_coordinator_init(args: argparse.Namespace) -> int:
    """Enroll the first coordinator. The trust root's key is never overwritten: an existing
    profile is refused, and the new key is sealed beside (``identity.key.pending``) and moved
    into place only once the relay has accepted the code."""
    directory = private_dir(args.profile)
    final, pending = directory / IDENTITY_FILE, directory / (IDENTITY_FILE + ".pending")
    if final.exists() or (directory / PROFILE_FILE).exists():
        raise CliError(say("profile-exists", args.lang, path=directory))
    if pending.exists():
        raise CliError(say("init-interrupted", args.lang, path=pending))
    identity = Identity.generate()
    secret = os.environ.get("RELAY_PASSPHRASE") or passphrase.generate()
    write_private(pending, PRODUCTION_KDF.seal(identity, secret))
    try:
        result = await bootstrap(args.url, args.code, identity, label=args.label, device_label=args.device_label)
    except BaseException:
        pending.unlink(missing_ok=True)  # refused or unreachable: nothing of this attempt stays
        raise
    os.replace(pending, final)
    Profile(url=args.url, device_id=result["device_id"], device_token=result["device_token"],
            device_kind="coordinator_console", trust_root=result["trust_root"],
            person_id=result["person_id"]).save(directory)
    if not os.environ.get("RELAY_PASSPHRASE"):
        print(say("passphrase-new", args.lang), file=sys.stderr)
        print(f"\n    {secret}\n", file=sys.stderr)
    print(say("enrolled", args.lang, id=result["person_id"], role="coordinator"))
    print(f"trust root / racine de confiance: {result['trust_root']}")
    return 0


async def cmd_institution(args: argparse.Namespace) -> int:
    async with _session(args) as client:
        if args.action == "add":
            _print(await client.call("POST", "/v1/institutions", json_body={"name": args.name}))
        else:
            _table(await client.call("GET", "/v1/institutions"), ["id", "name", "created_at"], args.lang)
    return 0


async def cmd_person(args: argparse.Namespace) -> int:
    async with _session(args) as client:
        if args.action == "list":
            _table(await client.call("GET", "/v1/people"), ["id", "role", "relation", "label", "institution_id",
                                                            "status"], args.lang)
            return 0
        if args.action == "revoke":
            await client.call("POST", f"/v1/people/{args.person_id}/revoke")
            return 0
        bundle = None
        if args.generate_keys:
            # For someone who will use an institutional terminal: the key is made here, sealed
            # under a fresh passphrase, and only the sealed bundle goes to the relay.
            identity = Identity.generate()
            secret = passphrase.generate()
            bundle = PRODUCTION_KDF.seal(identity, secret)
            public = identity.public
            identity.wipe()
        elif args.keys:
            keys = json.loads(args.keys.read_text("utf-8"))
            public = envelope.PublicIdentity(envelope.b64d(keys["sign_pk"]), envelope.b64d(keys["box_pk"]))
            if args.key_bundle:
                # Made by the person on the kiosk with 'relay keygen': sealed under their own
                # passphrase, so the coordinator handles it without ever being able to open it.
                bundle = args.key_bundle.read_bytes()
        else:
            raise CliError("give --keys FILE (from 'relay keygen') or --generate-keys")
        person = await client.enroll(public=public, label=args.label, role=args.role, relation=args.relation,
                                     institution_id=args.institution, key_bundle=bundle)
        print(say("enrolled", args.lang, id=person["id"], role=args.relation or args.role))
        if args.generate_keys:
            print(say("terminal-passphrase", args.lang), file=sys.stderr)
            print(f"\n    {secret}\n", file=sys.stderr)
    return 0


async def cmd_device(args: argparse.Namespace) -> int:
    async with _session(args) as client:
        if args.action == "list":
            _table(await client.call("GET", "/v1/devices"), ["id", "kind", "person_id", "institution_id", "label",
                                                             "status"], args.lang)
            return 0
        if args.action == "revoke":
            await client.call("POST", f"/v1/devices/{args.device_id}/revoke")
            return 0
        device = await client.call("POST", "/v1/devices", json_body={
            "kind": args.kind, "label": args.label, "person_id": args.person, "institution_id": args.institution})
        profile = Profile.load(args.profile)
        provisioning = {"url": profile.url, "device_id": device["id"], "device_token": device["device_token"],
                        "device_kind": args.kind, "trust_root": profile.trust_root, "person_id": args.person}
        write_private(args.out, json.dumps(provisioning, indent=2).encode())
        print(say("device-token", args.lang, path=args.out))
    return 0


async def cmd_case(args: argparse.Namespace) -> int:
    async with _session(args) as client:
        action = args.action
        if action == "open":
            result = await client.call("POST", "/v1/cases", json_body={
                "referral_source": args.referral, "institution_id": args.institution})
        elif action == "add-participant":
            result = await client.call("POST", f"/v1/cases/{args.case}/participants", json_body={"person_id": args.person})
        elif action == "assign-mediator":
            result = await client.call("POST", f"/v1/cases/{args.case}/mediators", json_body={"person_id": args.person})
        elif action == "consent":
            result = await client.call("POST", f"/v1/cases/{args.case}/participants/{args.person}/consent",
                                       json_body={"consent": args.consent})
        elif action == "status":
            result = await client.call("POST", f"/v1/cases/{args.case}/status", json_body={"status": args.status})
        elif action == "legal-hold":
            if args.hold is None:
                raise CliError("say --on or --off / indiquez --on ou --off")
            result = await client.call("POST", f"/v1/cases/{args.case}/legal-hold", json_body={"hold": args.hold})
        elif action == "retention":
            if not args.rule or not args.days:
                raise CliError("--rule and --days (a number, or 'default') are needed / --rule et --days sont requis")
            days = None if args.days == "default" else _positive(args.days)
            result = await client.call("POST", f"/v1/cases/{args.case}/retention",
                                       json_body={"rule": args.rule, "days": days})
        elif action == "erase":
            result = await client.call("POST", f"/v1/cases/{args.case}/participants/{args.person}/erasure")
        elif action == "show":
            result = await client.call("GET", f"/v1/cases/{args.case}")
        elif action == "items":
            _table(await client.call("GET", f"/v1/cases/{args.case}/items"),
                   ["id", "kind", "sender_id", "recipient_id", "state", "reason_code", "hold_code", "first_opened_at"],
                   args.lang)
            return 0
        else:
            _table(await client.call("GET", "/v1/cases"), ["id", "status", "institution_id", "created_at"], args.lang)
            return 0
        _print(result)
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise CliError(f"{text!r} is not a number of days / n'est pas un nombre de jours")
    return int(text)


async def cmd_retention(args: argparse.Namespace) -> int:
    async with _session(args) as client:
        if args.action == "due":
            _table(await client.call("GET", "/v1/retention/due"), ["item_id", "case_id", "state", "rule", "due_at"],
                   args.lang)
        else:
            _print(await client.call("GET", "/v1/retention"))
    return 0


async def cmd_condition(args: argparse.Namespace) -> int:
    async with _session(args) as client:
        if args.action == "list":
            _table(await client.call("GET", "/v1/conditions"), ["id", "kind", "reference", "restricted_id",
                                                                "direction", "program_exception", "effective_until",
                                                                "lifted_at", "version"], args.lang)
            return 0
        if args.action == "show":
            _print(await client.call("GET", f"/v1/conditions/{args.condition}"))
            return 0
        if args.action == "lift":
            _print(await client.call("POST", f"/v1/conditions/{args.condition}/lift"))
            return 0
        fields = {"kind": args.kind, "reference": args.reference, "restricted_id": args.restricted,
                  "protected_people": args.protect or None, "protected_case_id": args.protect_case,
                  "protected_side": args.protect_side, "direction": args.direction,
                  "effective_from": args.start, "effective_until": args.end,
                  "program_exception": args.program_exception}
        if args.action == "add":
            body = {k: v for k, v in fields.items() if v is not None}
            body.setdefault("protected_people", [])
            _print(await client.call("POST", "/v1/conditions", json_body=body))
        else:  # amend: only what was given
            body = {k: v for k, v in fields.items() if v is not None and k not in ("kind", "restricted_id",
                                                                                    "protected_case_id",
                                                                                    "protected_side")}
            _print(await client.call("POST", f"/v1/conditions/{args.condition}/amend", json_body=body))
    return 0


async def cmd_approval(args: argparse.Namespace) -> int:
    async with _session(args) as client:
        if args.action == "list":
            _table(await client.call("GET", "/v1/approvals"), ["id", "case_id", "condition_id", "directions", "kinds",
                                                               "approved_at", "valid_until", "revoked_at"], args.lang)
        elif args.action == "revoke":
            await client.call("POST", f"/v1/approvals/{args.approval}/revoke")
        else:
            _print(await client.call("POST", "/v1/approvals", json_body={
                "case_id": args.case, "condition_id": args.condition, "directions": args.direction,
                "kinds": args.kind, "valid_until": args.until}))
    return 0


# -- participants, mediators, terminals -------------------------------------------------------


VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".webm", ".mkv"}


async def cmd_send(args: argparse.Namespace) -> int:
    kind = args.kind or ("video" if args.file.suffix.lower() in VIDEO_SUFFIXES else "letter")
    content_type = args.content_type or mimetypes.guess_type(args.file.name)[0] or (
        "video/mp4" if kind == "video" else "text/plain; charset=utf-8")
    async with _session(args) as client:
        outbox = _outbox(args, client)
        with open(args.file, "rb") as src:
            result = await client.send(case_id=args.case, recipient=args.to, src=src, kind=kind,
                                       content_type=content_type, progress=Bar("upload"), outbox=outbox,
                                       shrink=args.shrink, transcode_progress=Bar("shrinking", unit="s"))
    print(say("sent", args.lang, id=result["id"], status=result["status"][args.lang]))
    return 0


def _outbox(args: argparse.Namespace, client: Client) -> Path:
    """Ciphertext waiting for the relay's acknowledgement: per person (a kiosk serves many)."""
    return private_dir(args.profile / "outbox" / str(client.person_id))


async def cmd_resume(args: argparse.Namespace) -> int:
    """Finish sends that a lost connection or a stopped client left unfinished."""
    async with _session(args) as client:
        finished = await client.resume_outbox(_outbox(args, client), progress=Bar("upload"))
    for result in finished:
        print(say("sent", args.lang, id=result["id"], status=result.get("status", {}).get(args.lang, "")))
    if not finished:
        print(say("nothing", args.lang))
    return 0


async def cmd_sent(args: argparse.Namespace) -> int:
    async with _session(args) as client:
        rows = await client.call("GET", "/v1/items/sent")
    for row in rows:
        row["status_text"] = row["status"][args.lang]
        row["to"] = "mediators" if row["to_mediators"] else row["recipient_id"]
    _table(rows, ["id", "to", "submitted_at", "status_text", "first_opened_at"], args.lang)
    return 0


async def cmd_inbox(args: argparse.Namespace) -> int:
    async with _session(args) as client:
        _table(await client.call("GET", "/v1/inbox"), ["id", "kind", "sender_id", "decided_at", "first_opened_at"],
               args.lang)
    return 0


async def _write_verified(args: argparse.Namespace, fetcher: Any) -> int:
    """Decrypt to a private file beside ``--out`` (streamed: a video never sits in memory) and
    rename it into place only once everything verified; without ``--out``, show a letter."""
    if not args.out:
        buffer = io.BytesIO()
        try:
            await fetcher(buffer)
        except VerificationError:
            raise CliError(say("verify-failed", args.lang)) from None
        sys.stdout.write(buffer.getvalue().decode("utf-8", errors="replace"))
        return 0
    try:
        await _into_place(args.out, fetcher)
    except VerificationError:
        raise CliError(say("verify-failed", args.lang)) from None
    print(say("fetched", args.lang, n=args.out.stat().st_size, path=args.out), file=sys.stderr)
    return 0


async def _into_place(dst: Path, fetcher: Any) -> None:
    """``fetcher(out)`` into a private file beside ``dst``, renamed to ``dst`` only if it succeeds."""
    fd, name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".partial", dir=dst.parent)
    partial = Path(name)  # created afresh (O_EXCL, 0600): nothing planted beforehand is written into
    try:
        with os.fdopen(fd, "wb") as out:
            await fetcher(out)
        os.replace(partial, dst)
    finally:
        partial.unlink(missing_ok=True)


async def cmd_fetch(args: argparse.Namespace) -> int:
    async with _session(args) as client:
        return await _write_verified(args, lambda dst: client.fetch(args.item, dst, progress=Bar("download")))


async def cmd_note(args: argparse.Namespace) -> int:
    async with _session(args) as client:
        return await _write_verified(args, lambda dst: client.read_note(args.item, dst))


async def _write_posters(client: Client, item_ids: list[str], into: Path, lang: str) -> None:
    """Each video's poster frame as INTO/ITEM.jpg, verified and decrypted (private files)."""
    into.mkdir(parents=True, exist_ok=True, mode=0o700)
    for item_id in item_ids:
        await _into_place(into / f"{item_id}.jpg", lambda out, item_id=item_id: client.poster(item_id, out))
    print(say("posters-written", lang, n=len(item_ids), path=into))


async def cmd_review(args: argparse.Namespace) -> int:
    async with _session(args) as client:
        action = args.action
        if action == "queue":
            queue = await client.call("GET", "/v1/review/queue")
            _table(queue, ["id", "case_id", "kind", "sender_id", "recipient_id", "state", "hold_code",
                           "awaiting_approval", "has_poster", "age_seconds"], args.lang)
            if args.posters is not None:
                await _write_posters(client, [q["id"] for q in queue if q["has_poster"]], args.posters, args.lang)
        elif action == "inbox":
            _table(await client.call("GET", "/v1/review/inbox"),
                   ["id", "case_id", "kind", "sender_id", "state", "age_seconds"], args.lang)
        elif action == "open":
            return await _write_verified(args, lambda dst: client.open_item(args.item, dst, progress=Bar("download")))
        elif action == "release":
            sanitizing = Bar("sanitizing", unit="s")
            if args.rendition:
                with open(args.rendition, "rb") as rendition:
                    await client.release(args.item, rendition, progress=Bar("upload"), transcode_progress=sanitizing)
            else:
                await client.release(args.item, progress=Bar("upload"), transcode_progress=sanitizing)
            print(say("released", args.lang, id=args.item))
        elif action == "return":
            await client.return_to_sender(args.item, args.note)
            print(say("returned", args.lang, id=args.item))
        elif action == "withhold":
            await client.withhold(args.item, args.reason)
            print(say("withheld", args.lang, id=args.item, reason=args.reason))
        elif action == "read":
            _print(await client.call("POST", f"/v1/items/{args.item}/read"))
        elif action == "write":
            with open(args.file, "rb") as src:
                result = await client.send(case_id=args.case, recipient=args.to, src=src, progress=Bar("upload"))
            print(say("sent", args.lang, id=result["id"], status=result["status"][args.lang]))
    return 0


async def cmd_demo(args: argparse.Namespace) -> int:
    from relay.client.demo import run

    return await run(args)


# -- argument parsing -------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="relay", description="Mediation relay / Relais de médiation")
    top.add_argument("--lang", choices=["en", "fr"], default=None, help="language / langue (default: from LANG)")
    sub = top.add_subparsers(dest="command", required=True)

    def with_profile(p: argparse.ArgumentParser, person: bool = False) -> argparse.ArgumentParser:
        p.add_argument("--profile", type=Path, required=True, help="this device's profile directory")
        if person:
            p.add_argument("--person", help="on a terminal: the participant signing in")
        return p

    p = sub.add_parser("serve", help="run the relay")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("RELAY_DATA_DIR", "./relay-data")))
    p.add_argument("--host", default=os.environ.get("RELAY_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("RELAY_PORT", "8787")))
    p.add_argument("--retention", type=Path, default=os.environ.get("RELAY_RETENTION") or None,
                   help="the retention schedule (TOML); default: the documented defaults")
    p.add_argument("--purge-interval", type=float, default=float(os.environ.get("RELAY_PURGE_INTERVAL", "600")),
                   help="seconds between purge runs inside the relay (0: never; run `relay purge` instead)")
    p.add_argument("--purge-duty", type=float, default=float(os.environ.get("RELAY_PURGE_DUTY", "0.5")),
                   help="the share of time a purge run may work (0 to 1); it rests the remainder, for requests")
    p.set_defaults(sync=cmd_serve)

    p = sub.add_parser("demo", help="a whole exchange on a throwaway relay, step by step")
    p.add_argument("--url", help="use this (freshly started) relay instead of starting one")
    p.add_argument("--code", help="with --url: the first-start enrollment code it printed")
    p.add_argument("--letter", type=Path, help="send this letter instead of the built-in one")
    p.add_argument("--data-dir", type=Path, help="keep the relay's data directory here")
    p.add_argument("--out", type=Path, help="write exactly what the recipient received here")
    p.add_argument("--video", type=Path, help="also send this video message, sanitized at the mediator's desk")
    p.set_defaults(run=cmd_demo)

    p = sub.add_parser("audit", help="verify or export the audit chain of a data directory, or check an export")
    p.add_argument("action", choices=["verify", "export", "verify-export"])
    p.add_argument("file", nargs="?", type=Path, help="with verify-export: the exported file")
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--out", type=Path, help="with export: where to write it")
    p.add_argument("--format", choices=["auto", "jsonl", "csv"], default="auto",
                   help="with export: JSON lines or CSV (auto: from the file name)")
    p.add_argument("--expect-head", help="a head recorded earlier: detects entries removed from the end")
    p.set_defaults(run=cmd_audit)

    p = sub.add_parser("purge", help="purge now what the retention schedule says is due (--dry-run: list it)")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("RELAY_DATA_DIR", "./relay-data")))
    p.add_argument("--retention", type=Path, default=os.environ.get("RELAY_RETENTION") or None,
                   help="the retention schedule the relay runs with (TOML)")
    p.add_argument("--dry-run", action="store_true", help="list what would go and why; change nothing")
    p.add_argument("--limit", type=int, help="at most this many items")
    p.set_defaults(run=cmd_purge)

    p = with_profile(sub.add_parser("keygen", help="make your keys on this device"))
    p.add_argument("--out", type=Path, help="where to write the public keys (default: PROFILE/public-keys.json)")
    p.set_defaults(run=cmd_keygen)

    p = with_profile(sub.add_parser("provision", help="set this device up from the file the coordinator gave"))
    p.add_argument("file", type=Path)
    p.set_defaults(run=cmd_provision)

    coord = sub.add_parser("coordinator", help="the national unit's console").add_subparsers(dest="area", required=True)
    p = with_profile(coord.add_parser("init", help="enroll the first coordinator with the first-start code"))
    p.add_argument("--url", required=True)
    p.add_argument("--code", required=True)
    p.add_argument("--label", default="National unit coordinator")
    p.add_argument("--device-label", default="National unit console")
    p.set_defaults(run=cmd_coordinator_init)

    p = with_profile(coord.add_parser("institution"))
    p.add_argument("action", choices=["add", "list"])
    p.add_argument("name", nargs="?")
    p.set_defaults(run=cmd_institution)

    p = with_profile(coord.add_parser("person"))
    p.add_argument("action", choices=["add", "list", "revoke"])
    p.add_argument("person_id", nargs="?")
    p.add_argument("--label")
    p.add_argument("--role", choices=["coordinator", "mediator", "participant"])
    p.add_argument("--relation", choices=["victim", "victim_representative", "victim_family", "offender_family",
                                          "offender"])
    p.add_argument("--institution")
    p.add_argument("--keys", type=Path, help="public keys from 'relay keygen' on the person's own device")
    p.add_argument("--key-bundle", type=Path,
                   help="with --keys: the sealed identity.key the person made with 'relay keygen' (terminal users)")
    p.add_argument("--generate-keys", action="store_true",
                   help="for terminal users, when they cannot run keygen themselves: the key is made on this console"
                        " (so its operator could read their mail); prefer --keys with --key-bundle")
    p.set_defaults(run=cmd_person)

    p = with_profile(coord.add_parser("device"))
    p.add_argument("action", choices=["add", "list", "revoke"])
    p.add_argument("device_id", nargs="?")
    p.add_argument("--kind", choices=["participant_device", "mediator_desk", "terminal", "coordinator_console"])
    p.add_argument("--label")
    p.add_argument("--person")
    p.add_argument("--institution")
    p.add_argument("--out", type=Path, help="the device file to hand over")
    p.set_defaults(run=cmd_device)

    p = with_profile(coord.add_parser("case"))
    p.add_argument("action", choices=["open", "list", "show", "items", "add-participant", "assign-mediator", "consent",
                                      "status", "legal-hold", "retention", "erase"])
    p.add_argument("case", nargs="?")
    p.add_argument("--referral", help="victim, institutional or community")
    p.add_argument("--institution")
    p.add_argument("--person")
    p.add_argument("--consent", choices=["given", "withdrawn"])
    p.add_argument("--status", choices=["open", "paused", "closed"])
    hold = p.add_mutually_exclusive_group()
    hold.add_argument("--on", dest="hold", action="store_const", const=True, help="with legal-hold: set it")
    hold.add_argument("--off", dest="hold", action="store_const", const=False, help="with legal-hold: lift it")
    p.add_argument("--rule", choices=["review_wait", "released_undelivered", "after_delivery", "returned_or_withheld",
                                      "closed_case"], help="with retention: which rule of the schedule")
    p.add_argument("--days", help="with retention: this case's length in days, or 'default'")
    p.set_defaults(run=cmd_case)

    p = with_profile(coord.add_parser("retention", help="what retention keeps and has purged; what is due now"))
    p.add_argument("action", choices=["status", "due"])
    p.set_defaults(run=cmd_retention)

    p = with_profile(coord.add_parser("condition", help="no-contact conditions (court orders, parole, institutional)"))
    p.add_argument("action", choices=["add", "amend", "lift", "list", "show"])
    p.add_argument("condition", nargs="?", help="the condition id (amend, lift, show)")
    p.add_argument("--kind", choices=["court_order", "parole_condition", "institutional"])
    p.add_argument("--reference", help="the order's or condition's reference")
    p.add_argument("--restricted", help="the person the condition restricts")
    p.add_argument("--protect", action="append", default=[], help="a protected person (repeat as needed)")
    p.add_argument("--protect-case", help="with --protect-side: everyone on one side of this case")
    p.add_argument("--protect-side", choices=["victim", "offender"])
    p.add_argument("--direction", choices=["from_restricted", "to_restricted", "both"])
    p.add_argument("--start", help="effective from (2026-11-21T00:00:00Z)")
    p.add_argument("--end", help="effective until, if it ends")
    p.add_argument("--program-exception", action=argparse.BooleanOptionalAction, default=None,
                   help="the condition carries 'unless deemed appropriate and facilitated by CSC's Restorative"
                        " Opportunities Program'")
    p.set_defaults(run=cmd_condition)

    p = with_profile(coord.add_parser("approval", help="the national unit's approvals under a condition"))
    p.add_argument("action", choices=["add", "revoke", "list"])
    p.add_argument("approval", nargs="?", help="the approval id (revoke)")
    p.add_argument("--case")
    p.add_argument("--condition")
    p.add_argument("--direction", action="append", choices=["from_restricted", "to_restricted"])
    p.add_argument("--kind", action="append", choices=["letter", "video"])
    p.add_argument("--until", help="valid until (2027-05-01T00:00:00Z)")
    p.set_defaults(run=cmd_approval)

    p = with_profile(sub.add_parser("send", help="seal and send a letter"), person=True)
    p.add_argument("file", type=Path)
    p.add_argument("--case", required=True)
    p.add_argument("--to", required=True, help="the other participant's id, or 'mediators'")
    p.add_argument("--kind", choices=["letter", "video"], help="default: video for .mp4/.mov/.webm/.mkv files")
    p.add_argument("--content-type", help="default: guessed from the file name")
    p.add_argument("--shrink", action="store_true",
                   help="a video: re-encode it here first (smaller; location and device tags never leave this device)")
    p.set_defaults(run=cmd_send)

    p = with_profile(sub.add_parser("resume", help="finish sends a lost connection or a restart interrupted"),
                     person=True)
    p.set_defaults(run=cmd_resume)
    p = with_profile(sub.add_parser("sent", help="what you sent and where it is"), person=True)
    p.set_defaults(run=cmd_sent)
    p = with_profile(sub.add_parser("inbox", help="items released to you"), person=True)
    p.set_defaults(run=cmd_inbox)
    for name, func, helptext in (("fetch", cmd_fetch, "verify and open a released item"),
                                 ("note", cmd_note, "read the mediator's note on a returned item")):
        p = with_profile(sub.add_parser(name, help=helptext), person=True)
        p.add_argument("item")
        p.add_argument("--out", type=Path, help="write here instead of showing it")
        p.set_defaults(run=func)

    p = with_profile(sub.add_parser("review", help="the mediator's desk"))
    p.add_argument("action", choices=["queue", "inbox", "open", "release", "return", "withhold", "read", "write"])
    p.add_argument("item", nargs="?")
    p.add_argument("--out", type=Path)
    p.add_argument("--rendition", type=Path, help="release this edited version instead of the letter as written")
    p.add_argument("--note", help="the note to the sender, with return")
    p.add_argument("--reason", help="a reason code, with withhold (for example not-ready)")
    p.add_argument("--case")
    p.add_argument("--to")
    p.add_argument("--file", type=Path)
    p.add_argument("--posters", type=Path, help="with queue: write each video's poster frame here as ITEM.jpg")
    p.set_defaults(run=cmd_review)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.lang = language(args.lang)
    try:
        if hasattr(args, "sync"):
            return int(args.sync(args))
        return int(asyncio.run(args.run(args)))
    except (CliError, InsecureTransport, OverLimit, admin.OperatorError) as exc:
        print(exc, file=sys.stderr)
        return 1
    except ProblemError as exc:
        print(f"{exc} ({exc.status} {exc.type})", file=sys.stderr)
        return 1
    except VerificationError:
        print(say("verify-failed", args.lang), file=sys.stderr)
        return 1
    except MediaError as exc:
        print(exc.message_fr if args.lang == "fr" else exc.message_en, file=sys.stderr)
        return 1
    except aiohttp.ClientConnectionError:
        url = getattr(args, "url", None) or "?"
        print(say("unreachable", args.lang, url=url), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
