"""The national unit's console: ``relay coordinator init|institution|person|device|case|retention|condition|approval``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from relay import envelope
from relay.client import passphrase
from relay.client.cli.common import CliError, command, print_json, session, subcommands, table, words, yes_no
from relay.client.cli.keys import show_passphrase
from relay.client.kdf import PRODUCTION_KDF
from relay.client.profile import IDENTITY_FILE, PROFILE_FILE, Profile, private_dir, write_private
from relay.client.sdk import bootstrap
from relay.envelope import Identity
from relay.i18n.cli import say


def register(sub: Any, lang: str) -> None:
    coord = subcommands(command(sub, "coordinator", lang, "help.coordinator"), "area", lang)

    p = command(coord, "init", lang, "help.coordinator.init", profile=True)
    p.add_argument("--url", required=True, help=say("help.init.url", lang))
    p.add_argument("--code", required=True, help=say("help.init.code", lang))
    p.add_argument("--label", default="National unit coordinator", help=say("help.init.label", lang))
    p.add_argument("--device-label", default="National unit console", help=say("help.init.device-label", lang))
    p.set_defaults(run=cmd_init)

    p = command(coord, "institution", lang, "help.coordinator.institution", profile=True)
    p.add_argument("action", choices=["add", "list"])
    p.add_argument("name", nargs="?", help=say("help.institution.name", lang))
    p.set_defaults(run=cmd_institution)

    p = command(coord, "person", lang, "help.coordinator.person", profile=True)
    p.add_argument("action", choices=["add", "list", "revoke", "kiosk-code"])
    p.add_argument("person_id", nargs="?", help=say("help.person.id", lang))
    p.add_argument("--label", help=say("help.person.label", lang))
    p.add_argument("--role", choices=["coordinator", "mediator", "participant"], help=say("help.person.role", lang))
    p.add_argument("--relation", choices=["victim", "victim_representative", "victim_family", "offender_family",
                                          "offender"], help=say("help.person.relation", lang))
    p.add_argument("--institution", help=say("help.person.institution", lang))
    p.add_argument("--keys", type=Path, help=say("help.person.keys", lang))
    p.add_argument("--key-bundle", type=Path, help=say("help.person.key-bundle", lang))
    p.add_argument("--generate-keys", action="store_true", help=say("help.person.generate-keys", lang))
    p.set_defaults(run=cmd_person)

    p = command(coord, "device", lang, "help.coordinator.device", profile=True)
    p.add_argument("action", choices=["add", "list", "revoke"])
    p.add_argument("device_id", nargs="?", help=say("help.device.id", lang))
    p.add_argument("--kind", choices=["participant_device", "mediator_desk", "terminal", "coordinator_console"],
                   help=say("help.device.kind", lang))
    p.add_argument("--label", help=say("help.device.label", lang))
    p.add_argument("--person", help=say("help.device.person", lang))
    p.add_argument("--institution", help=say("help.device.institution", lang))
    p.add_argument("--out", type=Path, help=say("help.device.out", lang))
    p.set_defaults(run=cmd_device)

    p = command(coord, "case", lang, "help.coordinator.case", profile=True)
    p.add_argument("action", choices=["open", "list", "show", "items", "add-participant", "assign-mediator", "consent",
                                      "status", "legal-hold", "retention", "erase"])
    p.add_argument("case", nargs="?", help=say("help.case.id", lang))
    p.add_argument("--referral", help=say("help.case.referral", lang))
    p.add_argument("--institution", help=say("help.case.institution", lang))
    p.add_argument("--person", help=say("help.case.person", lang))
    p.add_argument("--consent", choices=["given", "withdrawn"], help=say("help.case.consent", lang))
    p.add_argument("--status", choices=["open", "paused", "closed"], help=say("help.case.status", lang))
    hold = p.add_mutually_exclusive_group()
    hold.add_argument("--on", dest="hold", action="store_const", const=True, help=say("help.case.on", lang))
    hold.add_argument("--off", dest="hold", action="store_const", const=False, help=say("help.case.off", lang))
    p.add_argument("--rule", choices=["review_wait", "released_undelivered", "after_delivery", "returned_or_withheld",
                                      "closed_case"], help=say("help.case.rule", lang))
    p.add_argument("--days", help=say("help.case.days", lang))
    p.set_defaults(run=cmd_case)

    p = command(coord, "retention", lang, "help.coordinator.retention", profile=True)
    p.add_argument("action", choices=["status", "due"])
    p.set_defaults(run=cmd_retention)

    p = command(coord, "condition", lang, "help.coordinator.condition", profile=True)
    p.add_argument("action", choices=["add", "amend", "lift", "list", "show"])
    p.add_argument("condition", nargs="?", help=say("help.condition.id", lang))
    p.add_argument("--kind", choices=["court_order", "parole_condition", "institutional"],
                   help=say("help.condition.kind", lang))
    p.add_argument("--reference", help=say("help.condition.reference", lang))
    p.add_argument("--restricted", help=say("help.condition.restricted", lang))
    p.add_argument("--protect", action="append", default=[], help=say("help.condition.protect", lang))
    p.add_argument("--protect-case", help=say("help.condition.protect-case", lang))
    p.add_argument("--protect-side", choices=["victim", "offender"], help=say("help.condition.protect-side", lang))
    p.add_argument("--direction", choices=["from_restricted", "to_restricted", "both"],
                   help=say("help.condition.direction", lang))
    p.add_argument("--start", help=say("help.condition.start", lang))
    p.add_argument("--end", help=say("help.condition.end", lang))
    p.add_argument("--program-exception", action=argparse.BooleanOptionalAction, default=None,
                   help=say("help.condition.program-exception", lang))
    p.set_defaults(run=cmd_condition)

    p = command(coord, "approval", lang, "help.coordinator.approval", profile=True)
    p.add_argument("action", choices=["add", "revoke", "list"])
    p.add_argument("approval", nargs="?", help=say("help.approval.id", lang))
    p.add_argument("--case", help=say("help.approval.case", lang))
    p.add_argument("--condition", help=say("help.approval.condition", lang))
    p.add_argument("--direction", action="append", choices=["from_restricted", "to_restricted"],
                   help=say("help.approval.direction", lang))
    p.add_argument("--kind", action="append", choices=["letter", "video"], help=say("help.approval.kind", lang))
    p.add_argument("--until", help=say("help.approval.until", lang))
    p.set_defaults(run=cmd_approval)


async def cmd_init(args: argparse.Namespace) -> int:
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
    Profile(url=args.url, device_id=result["device_id"], device_token=result["device_token"],
            device_kind="coordinator_console", trust_root=result["trust_root"],
            person_id=result["person_id"]).save(directory)
    os.replace(pending, final)
    if not os.environ.get("RELAY_PASSPHRASE"):
        show_passphrase(secret, args.lang)
    print(say("enrolled", args.lang, id=result["person_id"], role=words("role", "coordinator", args.lang)))
    print(f"trust root / racine de confiance: {result['trust_root']}")
    return 0


async def cmd_institution(args: argparse.Namespace) -> int:
    async with session(args) as client:
        if args.action == "add":
            if not args.name:
                raise CliError(say("needed", args.lang, what="NAME"))
            print_json(await client.call("POST", "/v1/institutions", json_body={"name": args.name}))
        else:
            table(await client.call("GET", "/v1/institutions"),
                  [("id", "id"), ("name", "name"), ("created", "created_at")], args.lang)
    return 0


async def cmd_person(args: argparse.Namespace) -> int:
    lang = args.lang
    async with session(args) as client:
        if args.action == "list":
            table(await client.call("GET", "/v1/people"), [
                ("id", "id"), ("label", "label"), ("role", lambda r: words("role", r["role"], lang)),
                ("relation", lambda r: words("relation", r.get("relation"), lang)),
                ("institution", "institution_id"), ("status", lambda r: words("status", r.get("status"), lang))],
                lang)
            return 0
        if args.action == "revoke":
            if not args.person_id:
                raise CliError(say("needed", lang, what="PERSON_ID"))
            await client.call("POST", f"/v1/people/{args.person_id}/revoke")
            return 0
        if args.action == "kiosk-code":  # a new code (the old one stops working), shown once
            if not args.person_id:
                raise CliError(say("needed", lang, what="PERSON_ID"))
            issued = await client.call("POST", f"/v1/people/{args.person_id}/kiosk-code")
            print(say("kiosk-code", lang, code=issued["kiosk_code"]))
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
            try:
                keys = json.loads(args.keys.read_text("utf-8"))
                public = envelope.PublicIdentity(envelope.b64d(keys["sign_pk"]), envelope.b64d(keys["box_pk"]))
            except (ValueError, KeyError, TypeError):
                raise CliError(say("bad-device-file", lang, path=args.keys)) from None
            if args.key_bundle:
                # Made by the person on the kiosk with 'relay keygen': sealed under their own
                # passphrase, so the coordinator handles it without ever being able to open it.
                bundle = args.key_bundle.read_bytes()
        else:
            raise CliError(say("keys-needed", lang))
        person = await client.enroll(public=public, label=args.label, role=args.role, relation=args.relation,
                                     institution_id=args.institution, key_bundle=bundle)
        print(say("enrolled", lang, id=person["id"], role=words("relation", args.relation, lang) if args.relation
                  else words("role", args.role, lang)))
        if args.generate_keys:
            show_passphrase(secret, lang, "terminal-passphrase")
        if person.get("kiosk_code"):
            print(say("kiosk-code", lang, code=person["kiosk_code"]))
    return 0


async def cmd_device(args: argparse.Namespace) -> int:
    lang = args.lang
    async with session(args) as client:
        if args.action == "list":
            table(await client.call("GET", "/v1/devices"), [
                ("id", "id"), ("kind", lambda r: words("device", r["kind"], lang)), ("person", "person_id"),
                ("institution", "institution_id"), ("label", "label"),
                ("status", lambda r: words("status", r.get("status"), lang))], lang)
            return 0
        if args.action == "revoke":
            if not args.device_id:
                raise CliError(say("needed", lang, what="DEVICE_ID"))
            await client.call("POST", f"/v1/devices/{args.device_id}/revoke")
            return 0
        if args.out is None:
            raise CliError(say("out-needed", lang))
        # The person's key fingerprint, verified along the enrollment chain: 'relay provision'
        # checks it against the keys in the profile it sets up.
        fingerprint = (await client.person(args.person)).keys.fingerprint() if args.person else None
        device = await client.call("POST", "/v1/devices", json_body={
            "kind": args.kind, "label": args.label, "person_id": args.person, "institution_id": args.institution})
        profile = Profile.load(args.profile)
        provisioning = {"url": profile.url, "device_id": device["id"], "device_token": device["device_token"],
                        "device_kind": args.kind, "trust_root": profile.trust_root, "person_id": args.person,
                        "person_fingerprint": fingerprint}
        write_private(args.out, json.dumps(provisioning, indent=2).encode())
        print(say("device-token", lang, path=args.out))
    return 0


def _item_columns(lang: str, names: dict[str, str]) -> list[Any]:
    return [("id", "id"), ("kind", lambda r: words("kind", r["kind"], lang)),
            ("from", lambda r: names.get(r["sender_id"], r["sender_id"])),
            ("to", lambda r: say("to-mediators", lang) if r.get("recipient_id") is None
             else names.get(r["recipient_id"], r["recipient_id"])),
            ("state", lambda r: words("state", r["state"], lang)),
            ("reason", lambda r: words("reason", r.get("reason_code"), lang)),
            ("hold", lambda r: words("hold", r.get("hold_code"), lang)), ("opened", "first_opened_at")]


async def cmd_case(args: argparse.Namespace) -> int:
    lang = args.lang
    async with session(args) as client:
        action = args.action
        if action not in ("open", "list") and not args.case:
            raise CliError(say("needed", lang, what="CASE"))
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
                raise CliError(say("hold-needed", lang))
            result = await client.call("POST", f"/v1/cases/{args.case}/legal-hold", json_body={"hold": args.hold})
        elif action == "retention":
            if not args.rule or not args.days:
                raise CliError(say("retention-needed", lang))
            days = None if args.days == "default" else _positive(args.days, lang)
            result = await client.call("POST", f"/v1/cases/{args.case}/retention",
                                       json_body={"rule": args.rule, "days": days})
        elif action == "erase":
            result = await client.call("POST", f"/v1/cases/{args.case}/participants/{args.person}/erasure")
        elif action == "show":
            result = await client.call("GET", f"/v1/cases/{args.case}")
        elif action == "items":
            rows = await client.call("GET", f"/v1/cases/{args.case}/items")
            names = {p["id"]: p["label"] for p in await client.call("GET", "/v1/people")}
            table(rows, _item_columns(lang, names), lang)
            return 0
        else:
            table(await client.call("GET", "/v1/cases"), [
                ("id", "id"), ("status", lambda r: words("status", r["status"], lang)),
                ("institution", "institution_id"), ("created", "created_at")], lang)
            return 0
        print_json(result)
    return 0


def _positive(text: str, lang: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise CliError(say("not-days", lang, text=text))
    return int(text)


async def cmd_retention(args: argparse.Namespace) -> int:
    lang = args.lang
    async with session(args) as client:
        if args.action == "due":
            table(await client.call("GET", "/v1/retention/due"), [
                ("id", "item_id"), ("case", "case_id"), ("state", lambda r: words("state", r["state"], lang)),
                ("rule", "rule"), ("due", "due_at")], lang)
        else:
            print_json(await client.call("GET", "/v1/retention"))
    return 0


async def cmd_condition(args: argparse.Namespace) -> int:
    lang = args.lang
    async with session(args) as client:
        if args.action == "list":
            table(await client.call("GET", "/v1/conditions"), [
                ("id", "id"), ("kind", "kind"), ("reference", "reference"), ("restricted", "restricted_id"),
                ("direction", "direction"), ("exception", lambda r: yes_no(r.get("program_exception"), lang)),
                ("until", "effective_until"), ("lifted", "lifted_at"), ("version", "version")], lang)
            return 0
        if args.action in ("show", "lift", "amend") and not args.condition:
            raise CliError(say("needed", lang, what="CONDITION"))
        if args.action == "show":
            print_json(await client.call("GET", f"/v1/conditions/{args.condition}"))
            return 0
        if args.action == "lift":
            print_json(await client.call("POST", f"/v1/conditions/{args.condition}/lift"))
            return 0
        fields = {"kind": args.kind, "reference": args.reference, "restricted_id": args.restricted,
                  "protected_people": args.protect or None, "protected_case_id": args.protect_case,
                  "protected_side": args.protect_side, "direction": args.direction,
                  "effective_from": args.start, "effective_until": args.end,
                  "program_exception": args.program_exception}
        if args.action == "add":
            body = {k: v for k, v in fields.items() if v is not None}
            body.setdefault("protected_people", [])
            print_json(await client.call("POST", "/v1/conditions", json_body=body))
        else:  # amend: only what was given
            body = {k: v for k, v in fields.items() if v is not None and k not in ("kind", "restricted_id",
                                                                                    "protected_case_id",
                                                                                    "protected_side")}
            print_json(await client.call("POST", f"/v1/conditions/{args.condition}/amend", json_body=body))
    return 0


async def cmd_approval(args: argparse.Namespace) -> int:
    async with session(args) as client:
        if args.action == "list":
            table(await client.call("GET", "/v1/approvals"), [
                ("id", "id"), ("case", "case_id"), ("condition", "condition_id"),
                ("directions", lambda r: ", ".join(r.get("directions") or [])),
                ("kinds", lambda r: ", ".join(words("kind", k, args.lang) for k in r.get("kinds") or [])),
                ("approved", "approved_at"), ("until", "valid_until"), ("revoked", "revoked_at")], args.lang)
        elif args.action == "revoke":
            if not args.approval:
                raise CliError(say("needed", args.lang, what="APPROVAL"))
            await client.call("POST", f"/v1/approvals/{args.approval}/revoke")
        else:
            print_json(await client.call("POST", "/v1/approvals", json_body={
                "case_id": args.case, "condition_id": args.condition, "directions": args.direction,
                "kinds": args.kind, "valid_until": args.until}))
    return 0
