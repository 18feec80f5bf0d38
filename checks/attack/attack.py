"""An outside tester's attack run against a relay on loopback: races, identity, protocol, logs.

It goes where tests/test_hostile_requests.py (malformed input over every route and role) and
tests/test_authorization.py (the route x role matrix) do not: races between a release and what
should stop it, double decisions and receipts, concurrent and cut-off resumable uploads, tokens
after sign-out and revocation, one case's or institution's people naming another's ids, HTTP
framing (Range, Content-Length against Transfer-Encoding, duplicated headers, pipelining, slow
clients), and the relay's JSON log scanned for anything a request carried.

Loopback only; it starts its own relay in a temporary directory and stops by itself. Every
answer is checked: no 5xx, every error an RFC 9457 problem of a type the relay defines, no
secret echoed. Findings are printed at the end (exit status 1 if any).

    .venv/bin/python -m checks.attack.attack            # the full run (about 7,000 requests)
    .venv/bin/python -m checks.attack.attack --quick    # a smaller run
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import io
import json
import logging
import os
import random
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from relay import envelope
from relay.client import passphrase as passphrases
from relay.client.kdf import TEST_KDF
from relay.client.scenario import Someone, World, build_world
from relay.client.sdk import Client, ProblemError
from relay.clock import stamp
from relay.envelope import Domain, Identity
from relay.server import errors
from relay.server import logs as relay_logs
from relay.server.app import create_app
from relay.server.routes import ROUTES
from relay.server.serving import running
from relay.server.settings import Settings
from relay.wire import KIOSK_CODE_ALPHABET

PREFIX = "urn:mediation-relay:problem:"
KNOWN_TYPES = {PREFIX + cls.type for cls in vars(errors).values()
               if isinstance(cls, type) and issubclass(cls, errors.RelayError)}
MARKER = "ZQXMARKER"  # put in paths, headers and bodies: it must never reach the log


class Clock:
    """Real time that the run can push forward (upload expiry)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Tally:
    by_kind: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def find(self, what: str) -> None:
        if what not in self.findings:
            self.findings.append(what)

    def check(self, kind: str, what: str, status: int, content_type: str, body: bytes, headers: Any,
              *, head: bool = False) -> None:
        self.by_kind[kind] += 1
        self.statuses[status] += 1
        if status >= 500:
            self.find(f"[{kind}] {what}: {status} {body[:160]!r}")
        text = body.decode("utf-8", "replace") + " " + " ".join(f"{k}: {v}" for k, v in headers.items())
        leaked = [s[:10] + "…" for s in self.secrets if s and s in text]
        if leaked:
            self.find(f"[{kind}] {what}: the answer carries a secret {leaked}")
        if status >= 400:
            if content_type != "application/problem+json":
                self.find(f"[{kind}] {what}: {status} answered as {content_type!r}, not a problem")
                return
            if head or not body:
                if not head:
                    self.find(f"[{kind}] {what}: {status} problem with an empty body")
                return
            try:
                problem = json.loads(body)
            except ValueError:
                self.find(f"[{kind}] {what}: problem body is not JSON")
                return
            if problem.get("type") not in KNOWN_TYPES or problem.get("status") != status:
                self.find(f"[{kind}] {what}: unknown problem {problem}")


@dataclass
class Env:
    url: str
    host: str
    port: int
    data_dir: Path
    clock: Clock
    world: World
    tally: Tally
    http: aiohttp.ClientSession
    console: Client
    mediator: Client
    victim: Client
    offender: Client  # on the terminal
    mediator2: Someone
    institution_b: str
    terminal_b: str
    stranger: Someone  # a kiosk participant of institution B, in a case at B
    mediator_b: Someone
    case_b: str
    bundle_limit: int = 6
    key_bundles: list[str] = field(default_factory=list)
    extra_clients: list[Client] = field(default_factory=list)

    async def request(self, kind: str, method: str, path: str, *, headers: dict[str, str] | None = None,
                      data: Any = None, json_body: Any = None, what: str | None = None) -> tuple[int, bytes, Any]:
        async with self.http.request(method, self.url + path, headers=headers or {}, data=data, json=json_body,
                                     skip_auto_headers={"Content-Type"} if json_body is None else ()) as r:
            body = await r.read()
            self.tally.check(kind, what or f"{method} {path[:70]}", r.status, r.content_type, body, r.headers,
                             head=method == "HEAD")
            return r.status, body, r.headers

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(f"file:{self.data_dir / 'relay.sqlite3'}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        return conn


def _h(client: Client) -> dict[str, str]:
    return client._headers()


# -- setting up: a second mediator, a second institution with its own kiosk and case -----------


async def _enroll(env_console: Client, label: str, role: str, relation: str | None, *,
                  institution_id: str | None = None, device: bool = True) -> Someone:
    identity = Identity.generate()
    secret = passphrases.generate() if institution_id else None
    bundle = TEST_KDF.seal(identity, secret) if secret else None
    person = await env_console.enroll(public=identity.public, label=label, role=role, relation=relation,
                                      institution_id=institution_id, key_bundle=bundle)
    someone = Someone(label, person["id"], identity, passphrase=secret, kiosk_code=person.get("kiosk_code"))
    if device:
        kind = {"mediator": "mediator_desk", "participant": "participant_device"}[role]
        made = await env_console.call("POST", "/v1/devices", json_body={"kind": kind, "person_id": person["id"],
                                                                       "label": f"{label} device"})
        someone.device_token = made["device_token"]
    return someone


async def _new_case(console: Client, institution_id: str, participants: list[str], mediators: list[str]) -> str:
    case = await console.call("POST", "/v1/cases", json_body={"referral_source": "victim",
                                                              "institution_id": institution_id})
    for pid in participants:
        await console.call("POST", f"/v1/cases/{case['id']}/participants", json_body={"person_id": pid})
    for pid in mediators:
        await console.call("POST", f"/v1/cases/{case['id']}/mediators", json_body={"person_id": pid})
    return str(case["id"])


async def _login(world: World, who: Someone, *, token: str | None = None, kiosk: bool = False) -> Client:
    client = await world.client(token or str(who.device_token)).__aenter__()
    identity = who.identity
    if kiosk:
        assert who.passphrase is not None
        identity = await client.unlock_on_terminal(who.person_id, who.passphrase, **TEST_KDF.open_kwargs)
    await client.login(who.person_id, identity)
    return client


async def _letter(sender: Client, case_id: str, recipient: str, text: bytes = b"a letter") -> str:
    sent = await sender.send(case_id=case_id, recipient=recipient, src=io.BytesIO(text))
    return str(sent["id"])


# -- races ---------------------------------------------------------------------------------------


async def _recipient_probe(env: Env, kind: str, client_headers: dict[str, str], item_id: str,
                           stop: asyncio.Event, log: list[tuple[float, float, str, bool]]) -> None:
    """Poll what a recipient sees of an item until ``stop``: (start, end, what, served)."""
    paths = ("/v1/inbox", f"/v1/items/{item_id}/delivery", f"/v1/items/{item_id}/delivery/content")
    i = 0
    while not stop.is_set():
        path = paths[i % 3]
        i += 1
        start = time.monotonic()
        status, body, _ = await env.request(kind, "GET", path, headers=client_headers)
        end = time.monotonic()
        served = status in (200, 206) and (item_id.encode() in body if path == "/v1/inbox" else True)
        log.append((start, end, path, served))
        await asyncio.sleep(0)


async def race_release_against(env: Env, rounds: int) -> None:
    """A release racing a withdrawal of consent, a new no-contact condition, a pause, a closure, a
    revocation of the recipient's device; once the change is acknowledged, nothing may be listed,
    fetched or released to the recipient, on any request that starts after the acknowledgement."""
    w = env.world
    changes = ["withdraw-recipient", "withdraw-sender", "condition", "pause", "close", "revoke-device",
               "revoke-person", "sign-out"]
    outcomes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for n in range(rounds):
        change = changes[n % len(changes)]
        recipient = await _enroll(env.console, f"Recipient {n}", "participant", "offender")
        case_id = await _new_case(env.console, w.institution_id, [w.victim.person_id, recipient.person_id],
                                  [w.mediator.person_id])
        receiver = await _login(w, recipient)
        env.extra_clients.append(receiver)
        item_id = await _letter(env.victim, case_id, recipient.person_id)
        stop = asyncio.Event()
        log: list[tuple[float, float, str, bool]] = []
        probes = [asyncio.create_task(_recipient_probe(env, "race-fetch", _h(receiver), item_id, stop, log))
                  for _ in range(3)]
        release_done: list[float] = [0.0]

        async def timed_release(_item: str = item_id, _done: list[float] = release_done) -> Any:
            result = await env.mediator.release(_item)
            _done[0] = time.monotonic()
            return result

        release = asyncio.create_task(timed_release())
        await asyncio.sleep(random.uniform(0, 0.03))
        kind = "race-change"
        if change == "withdraw-recipient":
            await env.request(kind, "POST", f"/v1/cases/{case_id}/participants/{recipient.person_id}/consent",
                              headers=_h(env.console), json_body={"consent": "withdrawn"})
        elif change == "withdraw-sender":
            await env.request(kind, "POST", f"/v1/cases/{case_id}/participants/{w.victim.person_id}/consent",
                              headers=_h(env.console), json_body={"consent": "withdrawn"})
        elif change == "condition":
            await env.request(kind, "POST", "/v1/conditions", headers=_h(env.console), json_body={
                "kind": "court_order", "reference": f"ORDER {n}", "restricted_id": recipient.person_id,
                "protected_people": [w.victim.person_id], "direction": "both",
                "effective_from": stamp(env.clock.now() - timedelta(days=1)), "program_exception": False})
        elif change == "pause":
            await env.request(kind, "POST", f"/v1/cases/{case_id}/pause", headers=_h(env.mediator),
                              json_body={"paused": True, "reason": "safety-assessment"})
        elif change == "close":
            await env.request(kind, "POST", f"/v1/cases/{case_id}/status", headers=_h(env.console),
                              json_body={"status": "closed"})
        elif change == "revoke-device":
            device_id = str(recipient.device_token).split(".")[0]
            await env.request(kind, "POST", f"/v1/devices/{device_id}/revoke", headers=_h(env.console))
        elif change == "revoke-person":
            await env.request(kind, "POST", f"/v1/people/{recipient.person_id}/revoke", headers=_h(env.console))
        elif change == "sign-out":
            await env.request(kind, "DELETE", "/v1/auth/session", headers=_h(receiver))
        acknowledged = time.monotonic()
        try:
            await release
            outcome = "released first" if release_done[0] and release_done[0] <= acknowledged else "released after"
        except ProblemError as exc:
            outcome = f"refused {exc.status}"
        outcomes[change][outcome] += 1
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*probes)
        late = [(path, round((start - acknowledged) * 1000, 1)) for start, _, path, served in log
                if served and start > acknowledged]
        if late:
            env.tally.find(f"[race {change}] served to the recipient after the change was acknowledged: {late[:3]}")
        # And a burst afterwards: every try refused.
        answers = await asyncio.gather(*(env.request("race-after", "GET", p, headers=_h(receiver)) for p in
                                         ["/v1/inbox", f"/v1/items/{item_id}/delivery",
                                          f"/v1/items/{item_id}/delivery/content"] * 8))
        for status, body, _ in answers:
            if status in (200, 206) and (status != 200 or item_id.encode() in body):
                env.tally.find(f"[race {change}] a fetch after the race served the item ({status})")
        receiver.session_token = None  # may be revoked: do not sign out at close
    env.tally.notes.append("release races: " + "; ".join(f"{c}: {dict(o)}" for c, o in outcomes.items()))


async def race_release_still_arriving(env: Env, rounds: int) -> None:
    """A release (or a mediator's own message) whose body is still arriving when the mediator
    signs out or their desk or enrollment is revoked: once that is acknowledged, it must not be
    written, nor reach the recipient. The body is held after its first chunk until then."""
    import relay.client.sdk.transfer as transfer
    w = env.world
    chunks = transfer._file_chunks
    for n in range(rounds):
        ended_by = ("desk revoked", "mediator revoked", "sign-out")[n % 3]
        own_message = n % 2 == 1
        someone = await _enroll(env.console, f"Mediator {n}", "mediator", None)
        await env.console.call("POST", f"/v1/cases/{w.case_id}/mediators", json_body={"person_id": someone.person_id})
        desk = await _login(w, someone)
        item_id = None if own_message else await _letter(env.victim, w.case_id, w.offender.person_id, b"l" * 200_000)
        started, go = asyncio.Event(), asyncio.Event()

        async def stalled(handle: Any, total: int, progress: Any, _s: asyncio.Event = started,
                          _g: asyncio.Event = go) -> Any:
            async for chunk in chunks(handle, total, progress):
                yield chunk
                _s.set()
                await _g.wait()

        transfer._file_chunks = stalled  # type: ignore[assignment]
        try:
            task = asyncio.create_task(
                desk.send(case_id=w.case_id, recipient=w.offender.person_id, src=io.BytesIO(b"m" * 200_000))
                if own_message else desk.release(str(item_id)))
            await started.wait()
            await asyncio.sleep(0.05)
            if ended_by == "desk revoked":
                await env.request("race-arriving", "POST", f"/v1/devices/{str(someone.device_token).split('.')[0]}"
                                  "/revoke", headers=_h(env.console))
            elif ended_by == "mediator revoked":
                await env.request("race-arriving", "POST", f"/v1/people/{someone.person_id}/revoke",
                                  headers=_h(env.console))
            else:
                await env.request("race-arriving", "DELETE", "/v1/auth/session", headers=_h(desk))
            go.set()
            try:
                result = await task
                env.tally.find(f"[release still arriving] {'own message' if own_message else 'release'} written "
                               f"after '{ended_by}' was acknowledged: {result.get('state')}")
            except ProblemError as exc:
                env.tally.by_kind["race-arriving"] += 1
                if exc.status != 401:
                    env.tally.find(f"[release still arriving] refused {exc.status} {exc.type}, not 401")
        finally:
            transfer._file_chunks = chunks  # type: ignore[assignment]
            desk.session_token = None
            await desk.close()
    _orphan_blobs(env, "release still arriving")


async def race_two_decisions(env: Env, rounds: int) -> None:
    """Two mediators (and one mediator twice) deciding one item at once: one decision wins, the
    other is 409 already-decided, the item is in the winner's state, and no rendition is left over."""
    w = env.world
    m2 = await _login(w, env.mediator2)
    env.extra_clients.append(m2)
    for n in range(rounds):
        item_id = await _letter(env.victim, w.case_id, w.offender.person_id, b"decide me %d" % n)
        pair = [env.mediator.release(item_id), m2.release(item_id) if n % 3 else env.mediator.release(item_id)]
        if n % 4 == 1:
            pair[1] = m2.withhold(item_id, "outside-mediation")
        if n % 4 == 2:
            pair[1] = m2.return_to_sender(item_id, "please rewrite")
        outcomes = await asyncio.gather(*pair, return_exceptions=True)
        env.tally.by_kind["race-decision"] += 2
        wins = [o for o in outcomes if isinstance(o, dict)]
        losses = [o for o in outcomes if isinstance(o, ProblemError)]
        other = [o for o in outcomes if not isinstance(o, dict | ProblemError)]
        if other:
            env.tally.find(f"[race decision] unexpected {other!r}")
        if len(wins) != 1 or len(losses) != 1 or losses[0].type != "already-decided":
            env.tally.find(f"[race decision] {len(wins)} wins, losses {[(e.status, e.type) for e in losses]}")
            continue
        with env.db() as db:
            row = db.execute("SELECT state, decision, delivery_blob_id FROM items WHERE id = ?", (item_id,)).fetchone()
            audits = db.execute("SELECT COUNT(*) FROM audit_log WHERE item_id = ? AND action IN "
                                "('item.release','item.return','item.withhold')", (item_id,)).fetchone()[0]
        if row["state"] != wins[0]["state"] or audits != 1:
            env.tally.find(f"[race decision] item {row['state']} ({audits} decisions audited), winner said "
                           f"{wins[0]['state']}")
    _orphan_blobs(env, "race decision")


def _orphan_blobs(env: Env, what: str) -> None:
    with env.db() as db:
        referenced = {r[0] for r in db.execute(
            "SELECT blob_id FROM items UNION SELECT delivery_blob_id FROM items WHERE delivery_blob_id IS NOT NULL"
            " UNION SELECT poster_blob_id FROM items WHERE poster_blob_id IS NOT NULL")}
    blob_dir = env.data_dir / "blobs" / "objects"
    stored = {p.name for p in blob_dir.rglob("*") if p.is_file()}
    orphans = stored - referenced
    if orphans:
        env.tally.find(f"[{what}] {len(orphans)} blob file(s) no item refers to")


async def race_receipts(env: Env, rounds: int) -> None:
    """Ten receipts for one item at once: one delivery, one audit entry, no 5xx."""
    w = env.world
    for n in range(rounds):
        item_id = await _letter(env.victim, w.case_id, w.offender.person_id, b"receipt %d" % n)
        await env.mediator.release(item_id)
        view = await env.offender.call("GET", f"/v1/items/{item_id}/delivery")
        decision = view["decision"]
        identity = env.offender.identity
        assert identity is not None
        bodies = []
        for k in range(10):
            receipt = envelope.receipt(item_id=item_id, decision_hash=envelope.digest(decision),
                                       recipient=w.offender.person_id,
                                       opened_at=stamp(env.clock.now() + timedelta(seconds=k)))
            bodies.append({"receipt": receipt, "signature": envelope.sign(Domain.RECEIPT, receipt,
                                                                          identity.signing_key)})
        answers = await asyncio.gather(*(env.request("race-receipt", "POST", f"/v1/items/{item_id}/receipt",
                                                     headers=_h(env.offender), json_body=b) for b in bodies))
        with env.db() as db:
            delivered = db.execute("SELECT COUNT(*) FROM audit_log WHERE item_id = ? AND action = 'item.delivered'",
                                   (item_id,)).fetchone()[0]
            opened = db.execute("SELECT first_opened_at, receipt_doc FROM items WHERE id = ?", (item_id,)).fetchone()
        firsts = {json.loads(b)["first_opened_at"] for s, b, _ in answers if s == 200}
        if delivered != 1 or len(firsts) != 1 or opened["first_opened_at"] not in firsts:
            env.tally.find(f"[race receipt] {delivered} deliveries audited; answers said first opened {firsts}, "
                           f"the row {opened['first_opened_at']}")


# -- resumable uploads ---------------------------------------------------------------------------


TUS = {"Tus-Resumable": "1.0.0"}


async def _create_upload(env: Env, client: Client, length: int) -> str:
    status, body, headers = await env.request("tus", "POST", "/v1/uploads",
                                              headers={**_h(client), **TUS, "Upload-Length": str(length)})
    if status != 201:
        raise RuntimeError(f"create upload: {status} {body[:200]!r}")
    return str(headers["Location"]).rsplit("/", 1)[-1]


async def _patch(env: Env, client: Client, upload_id: str, offset: int, data: Any, kind: str = "tus",
                 extra: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
    return await env.request(kind, "PATCH", f"/v1/uploads/{upload_id}", data=data, headers={
        **_h(client), **TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream",
        **(extra or {})})


async def _slow(data: bytes, pause: float, pieces: int = 4) -> Any:
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        yield data[i:i + step]
        await asyncio.sleep(pause)


async def attack_uploads(env: Env, rounds: int) -> None:
    w = env.world
    victim = env.victim
    for n in range(rounds):
        # Ten PATCHes at offset 0 at once: one is taken, the rest are 409 with the right offset.
        upload_id = await _create_upload(env, victim, 4096)
        chunks = [bytes([k]) * 1024 for k in range(10)]
        answers = await asyncio.gather(*(_patch(env, victim, upload_id, 0, c, "tus-race") for c in chunks))
        ok = [i for i, (s, _, _) in enumerate(answers) if s == 204]
        if len(ok) != 1 or any(s not in (204, 409) for s, _, _ in answers):
            env.tally.find(f"[tus race] statuses {[s for s, _, _ in answers]}")
        path = env.data_dir / "blobs" / "uploads" / f"{upload_id}.part"
        if ok and path.is_file() and path.read_bytes() != chunks[ok[0]]:
            env.tally.find("[tus race] the upload file does not hold exactly the accepted PATCH's bytes")
        status, _, headers = await env.request("tus", "HEAD", f"/v1/uploads/{upload_id}", headers={**_h(victim), **TUS})
        if status != 200 or headers.get("Upload-Offset") != "1024":
            env.tally.find(f"[tus race] HEAD says {status} offset {headers.get('Upload-Offset')}")
        # Termination while a slow PATCH is under way: afterwards the upload is gone, nothing kept.
        patch = asyncio.create_task(_patch(env, victim, upload_id, 1024, _slow(b"x" * 2048, 0.05), "tus-cut"))
        await asyncio.sleep(0.03)
        delete = await env.request("tus-cut", "DELETE", f"/v1/uploads/{upload_id}", headers={**_h(victim), **TUS})
        patched = await patch
        status, _, _ = await env.request("tus-cut", "HEAD", f"/v1/uploads/{upload_id}", headers={**_h(victim), **TUS})
        if status != 404 or delete[0] != 204 or (env.data_dir / "blobs" / "uploads" / f"{upload_id}.part").exists():
            env.tally.find(f"[tus terminate during PATCH] delete {delete[0]}, patch {patched[0]}, then HEAD {status}")
        # Another person's (and another device's) upload: 404, and it is unchanged.
        upload_id = await _create_upload(env, victim, 10)
        stranger = await _login(w, env.stranger, token=env.terminal_b, kiosk=True) if n == 0 else env.extra_clients[-1]
        if n == 0:
            env.extra_clients.append(stranger)
        for method in ("HEAD", "PATCH", "DELETE"):
            status, _, _ = await env.request("tus-cross", method, f"/v1/uploads/{upload_id}", data=b"y" * 10,
                                             headers={**_h(stranger), **TUS, "Upload-Offset": "0",
                                                      "Content-Type": "application/offset+octet-stream"})
            if status != 404:
                env.tally.find(f"[tus cross] {method} of another person's upload: {status}")
        status, _, headers = await env.request("tus", "HEAD", f"/v1/uploads/{upload_id}", headers={**_h(victim), **TUS})
        if status != 200 or headers.get("Upload-Offset") != "0":
            env.tally.find(f"[tus cross] the owner's upload changed: {status} {headers.get('Upload-Offset')}")
        await env.request("tus", "DELETE", f"/v1/uploads/{upload_id}", headers={**_h(victim), **TUS})
    # A PATCH after the item was created from the upload: 404, and the item's blob unchanged.
    sealed_letter = b"resumable letter"
    created: list[str] = []
    create_upload = victim.create_upload

    async def remember(size: int) -> str:
        created.append(await create_upload(size))
        return created[-1]

    victim.create_upload = remember  # type: ignore[method-assign]
    try:
        sent = await victim.send(case_id=w.case_id, recipient="mediators", src=io.BytesIO(sealed_letter),
                                 resumable=True)
    finally:
        del victim.create_upload
    with env.db() as db:
        before = db.execute("SELECT hash, size FROM items WHERE id = ?", (sent["id"],)).fetchone()
    for offset in ("0", str(len(sealed_letter)), "16"):
        for method in ("PATCH", "HEAD", "DELETE"):
            status, _, _ = await env.request("tus-after-item", method, f"/v1/uploads/{created[0]}", data=b"x" * 8,
                                             headers={**_h(victim), **TUS, "Upload-Offset": offset,
                                                      "Content-Type": "application/offset+octet-stream"})
            if status != 404:
                env.tally.find(f"[tus] {method} of an upload already made into an item: {status}")
    with env.db() as db:
        after = db.execute("SELECT hash, size FROM items WHERE id = ?", (sent["id"],)).fetchone()
    if tuple(before) != tuple(after):
        env.tally.find("[tus] an item changed after its upload was consumed")


async def attack_upload_expiry(env: Env) -> None:
    """Expiry during an upload: a PATCH under way when the clock passes the expiry, a sweep
    meanwhile, then a PATCH after it. (Last of the run: moving the clock ends every session.)"""
    victim = await _login(env.world, env.world.victim)
    upload_id = await _create_upload(env, victim, 4096)
    await _patch(env, victim, upload_id, 0, b"a" * 1024, "tus-expiry")
    patch = asyncio.create_task(_patch(env, victim, upload_id, 1024, _slow(b"b" * 1024, 0.05), "tus-expiry"))
    await asyncio.sleep(0.05)
    env.clock.offset += timedelta(hours=25)
    later = await _login(env.world, env.world.victim)
    # Meanwhile another create sweeps expired uploads: the one being written to must not be pulled away.
    other = await _create_upload(env, later, 10)
    first = await patch
    env.clock.offset += timedelta(hours=25)
    last = await _login(env.world, env.world.victim)
    second = await _patch(env, last, upload_id, 2048 if first[0] == 204 else 1024, b"c" * 10, "tus-expiry")
    gone = await env.request("tus-expiry", "HEAD", f"/v1/uploads/{upload_id}", headers={**_h(last), **TUS})
    if first[0] >= 500 or second[0] != 410 or gone[0] not in (404, 410):
        env.tally.find(f"[tus expiry] PATCH across the expiry {first[0]}, PATCH after it {second[0]}, "
                       f"then HEAD {gone[0]}")
    if (env.data_dir / "blobs" / "uploads" / f"{upload_id}.part").exists():
        env.tally.find("[tus expiry] an expired upload's bytes are still on disk")
    await env.request("tus", "DELETE", f"/v1/uploads/{other}", headers={**_h(last), **TUS})
    for client in (victim, later, last):
        client.session_token = None
        await client.close()


# -- identity ------------------------------------------------------------------------------------


async def attack_tokens(env: Env, rounds: int) -> None:
    """A token after sign-out or revocation fails on the very next request, with many in flight."""
    w = env.world
    for _ in range(rounds):
        client = await _login(w, w.victim)
        headers = _h(client)
        inflight = [asyncio.create_task(env.request("token", "GET", "/v1/me", headers=headers)) for _ in range(20)]
        status, _, _ = await env.request("token", "DELETE", "/v1/auth/session", headers=headers)
        await asyncio.gather(*inflight)
        after = await asyncio.gather(*(env.request("token", "GET", p, headers=headers)
                                       for p in ("/v1/me", "/v1/inbox", "/v1/items/sent", "/v1/cases") * 5))
        if status != 204 or any(s != 401 for s, _, _ in after):
            env.tally.find(f"[sign-out] {status}, then {[s for s, _, _ in after if s != 401]}")
        client.session_token = None
        await client.close()
    # A coordinator revokes a device while its session is busy.
    for n in range(max(1, rounds // 2)):
        person = await _enroll(env.console, f"Revoked {n}", "participant", "victim")
        await env.console.call("POST", f"/v1/cases/{w.case_id}/participants", json_body={"person_id": person.person_id})
        client = await _login(w, person)
        headers = _h(client)
        inflight = [asyncio.create_task(env.request("token", "GET", "/v1/me", headers=headers)) for _ in range(20)]
        device_id = str(person.device_token).split(".")[0]
        await env.request("token", "POST", f"/v1/devices/{device_id}/revoke", headers=_h(env.console))
        await asyncio.gather(*inflight)
        after = await asyncio.gather(*(env.request("token", "GET", "/v1/me", headers=headers) for _ in range(10)))
        after += [await env.request("token", "POST", "/v1/auth/challenge", headers=headers,
                                    json_body={"person_id": person.person_id})]
        if any(s != 401 for s, _, _ in after):
            env.tally.find(f"[device revoked] still answered {[s for s, _, _ in after]}")
        client.session_token = None
        await client.close()


def _same_problem(a: bytes, b: bytes) -> bool:
    try:
        pa, pb = json.loads(a), json.loads(b)
    except ValueError:
        return a == b
    for p in (pa, pb):
        p.pop("request_id", None)
        p.pop("instance", None)
    return bool(pa == pb)


async def attack_cross_tenant(env: Env, rounds: int) -> None:
    """Institution B's kiosk and case B's people naming institution A's and case A's ids: the
    same answer as for an id that exists nowhere, and nothing changed."""
    w = env.world
    item_a = await _letter(env.victim, w.case_id, w.offender.person_id, b"case A's letter")
    await env.mediator.release(item_a)
    upload_a = await _create_upload(env, env.victim, 100)
    stranger = await _login(w, env.stranger, token=env.terminal_b, kiosk=True)
    mediator_b = await _login(w, env.mediator_b)
    env.extra_clients += [stranger, mediator_b]
    fake = {"item": "itm_" + "0" * 15 + "1", "case": "cas_" + "0" * 15 + "1", "person": "per_" + "0" * 15 + "1",
            "upload": "upl_" + "0" * 15 + "1"}
    real = {"item": item_a, "case": w.case_id, "person": w.offender.person_id, "upload": upload_a}
    templates = [
        ("GET", "/v1/items/{item}"), ("GET", "/v1/items/{item}/content"), ("GET", "/v1/items/{item}/poster"),
        ("GET", "/v1/items/{item}/note"), ("GET", "/v1/items/{item}/note/content"),
        ("GET", "/v1/items/{item}/delivery"), ("GET", "/v1/items/{item}/delivery/content"),
        ("POST", "/v1/items/{item}/read"), ("POST", "/v1/items/{item}/receipt"),
        ("POST", "/v1/items/{item}/decision"),
        ("GET", "/v1/cases/{case}"), ("GET", "/v1/cases/{case}/items"), ("GET", "/v1/cases/{case}/timeline"),
        ("POST", "/v1/cases/{case}/pause"),
        ("GET", "/v1/directory/{person}"), ("GET", "/v1/people/{person}/key-bundle"),
        ("POST", "/v1/auth/challenge"), ("HEAD", "/v1/uploads/{upload}"), ("PATCH", "/v1/uploads/{upload}"),
        ("DELETE", "/v1/uploads/{upload}"),
    ]
    bodies = {"/v1/cases/{case}/pause": {"paused": True, "reason": "safety-assessment"},
              "/v1/auth/challenge": {"person_id": "{person}"}}
    callers = [("kiosk B participant", _h(stranger)), ("mediator B", _h(mediator_b)),
               ("kiosk B device only", {"X-Relay-Device": env.terminal_b})]
    with env.db() as db:
        before_items = [tuple(r) for r in db.execute("SELECT id, state, decision FROM items ORDER BY id")]
        before_cases = [tuple(r) for r in db.execute("SELECT id, status FROM cases ORDER BY id")]
    timing: dict[str, list[float]] = collections.defaultdict(list)
    for _ in range(rounds):
        for who, headers in callers:
            for method, template in templates:
                answers = []
                for values in (real, fake):
                    path = template.format(**values)
                    body = bodies.get(template)
                    if body is not None:
                        body = {k: v.format(**values) for k, v in body.items()} if template == "/v1/auth/challenge" \
                            else body
                    extra = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"} \
                        if "uploads" in template else {}
                    start = time.perf_counter()
                    if body is not None:
                        answer = await env.request("cross", method, path, headers={**headers, **extra}, json_body=body)
                    else:
                        answer = await env.request("cross", method, path, headers={**headers, **extra},
                                                   data=b"z" * 100 if method == "PATCH" else None)
                    timing["real" if values is real else "fake"].append(time.perf_counter() - start)
                    answers.append(answer)
                (s1, b1, _), (s2, b2, _) = answers
                if s1 != s2 or (method != "HEAD" and not _same_problem(b1, b2)):
                    env.tally.find(f"[cross] {who} {method} {template}: another's id answers {s1} {b1[:120]!r}, "
                                   f"an id of nothing {s2} {b2[:120]!r}")
                if s1 < 400:
                    env.tally.find(f"[cross] {who} {method} {template}: {s1} for another case's id")
    # Kiosk B with institution A's kiosk code; and the code with different spellings.
    code = str(w.offender.kiosk_code)
    for typed in (code, code.lower(), code.replace("-", " "), code.replace("-", "")):
        status, body, _ = await env.request("cross", "POST", "/v1/kiosk/identify",
                                            headers={"X-Relay-Device": env.terminal_b}, json_body={"code": typed})
        if status != 404 and status != 429:
            env.tally.find(f"[cross] kiosk B identified institution A's person: {status} {body[:100]!r}")
    with env.db() as db:
        after_items = [tuple(r) for r in db.execute("SELECT id, state, decision FROM items ORDER BY id")]
        after_cases = [tuple(r) for r in db.execute("SELECT id, status FROM cases ORDER BY id")]
    if before_items != after_items or before_cases != after_cases:
        env.tally.find("[cross] refused requests changed items or cases")
    real_ms = statistics.median(timing["real"]) * 1000
    fake_ms = statistics.median(timing["fake"]) * 1000
    env.tally.notes.append(f"timing: another case's id {real_ms:.2f} ms median, an id of nothing {fake_ms:.2f} ms "
                           f"({len(timing['real'])} each)")
    await env.request("tus", "DELETE", f"/v1/uploads/{upload_a}", headers={**_h(env.victim), **TUS})


async def attack_kiosk_guessing(env: Env, burst: int) -> None:
    """Wrong kiosk codes typed all at once on one terminal: no more are looked up than the limit
    (10 a quarter of an hour), however many arrive together."""
    terminal = await env.console.call("POST", "/v1/devices", json_body={
        "kind": "terminal", "institution_id": env.institution_b, "label": "guessing kiosk"})
    env.tally.secrets.add(terminal["device_token"])
    headers = {"X-Relay-Device": terminal["device_token"]}
    alphabet = KIOSK_CODE_ALPHABET
    guesses = ["".join(random.choice(alphabet) for _ in range(4)) + "-" + "".join(random.choice(alphabet)
                                                                               for _ in range(4))
               for _ in range(burst)]
    answers = await asyncio.gather(*(env.request("kiosk-guess", "POST", "/v1/kiosk/identify", headers=headers,
                                                 json_body={"code": g}) for g in guesses))
    looked_up = [s for s, _, _ in answers if s != 429]
    limit = 10
    if len(looked_up) > limit:
        env.tally.find(f"[kiosk codes] {len(looked_up)} of {burst} codes typed at once were looked up "
                       f"(the limit is {limit} a quarter of an hour)")


async def attack_single_use(env: Env, burst: int) -> None:
    """What may be used once, used many times at once: a signed challenge, a key-bundle fetch
    limit, an item id two submissions share."""
    w = env.world
    # One signed challenge sent many times at once: one session.
    async with w.client(str(w.victim.device_token)) as client:
        challenge = await client.call("POST", "/v1/auth/challenge", json_body={"person_id": w.victim.person_id})
        statement = envelope.login_statement(challenge=challenge["challenge"], device_id=client._device_id(),
                                             person_id=w.victim.person_id)
        body = {"challenge_id": challenge["challenge_id"],
                "signature": envelope.sign(Domain.LOGIN, statement, w.victim.identity.signing_key)}
        answers = await asyncio.gather(*(env.request("single-use", "POST", "/v1/auth/session",
                                                     headers={"X-Relay-Device": str(w.victim.device_token)},
                                                     json_body=body) for _ in range(burst)))
        won = [json.loads(b)["session_token"] for s, b, _ in answers if s == 201]
        env.tally.secrets.update(won)
        if len(won) != 1:
            env.tally.find(f"[challenge] one signed challenge opened {len(won)} sessions")
        for token in won:
            await env.request("single-use", "DELETE", "/v1/auth/session", headers={
                "X-Relay-Device": str(w.victim.device_token), "Authorization": f"Bearer {token}"})
    # Key bundle fetches at once, from a terminal that serves the person: at most the limit.
    person = await _enroll(env.console, "Bundle target", "participant", "victim", institution_id=env.institution_b,
                           device=False)
    await env.console.call("POST", f"/v1/cases/{env.case_b}/participants", json_body={"person_id": person.person_id})
    answers = await asyncio.gather(*(env.request("single-use", "GET", f"/v1/people/{person.person_id}/key-bundle",
                                                 headers={"X-Relay-Device": env.terminal_b})
                                     for _ in range(burst)))
    served = sum(1 for s, _, _ in answers if s == 200)
    env.key_bundles += [json.loads(b)["key_bundle"][:60] for s, b, _ in answers if s == 200][:1]
    if served > env.bundle_limit:
        env.tally.find(f"[key bundle] {served} fetches served at once (the limit is {env.bundle_limit} an hour)")
    # Two submissions of one item id at once (the SDK's id chosen twice): one item, no stray blob.
    import relay.client.sdk.sending as sending_module
    for _ in range(max(1, burst // 10)):
        taken = "itm_%016x" % random.getrandbits(64)
        original_new = sending_module.ids.new

        def same_id(kind: str, _taken: str = taken, _new: Any = original_new) -> str:
            return _taken if kind == "item" else str(_new(kind))

        sending_module.ids.new = same_id  # type: ignore[assignment]
        try:
            outcomes = await asyncio.gather(*(env.victim.send(case_id=w.case_id, recipient=w.offender.person_id,
                                                              src=io.BytesIO(b"twice %d" % k)) for k in range(4)),
                                            return_exceptions=True)
        finally:
            sending_module.ids.new = original_new  # type: ignore[assignment]
        env.tally.by_kind["same-item-id"] += 4
        ok = [o for o in outcomes if isinstance(o, dict)]
        refused = [o.status for o in outcomes if isinstance(o, ProblemError)]
        if len(ok) != 1 or any(r != 409 for r in refused) or len(ok) + len(refused) != 4:
            env.tally.find(f"[same item id] {len(ok)} accepted, refused {refused}, other "
                           f"{[o for o in outcomes if not isinstance(o, dict | ProblemError)]}")
    _orphan_blobs(env, "same item id")


async def attack_kiosk_reach(env: Env) -> None:
    """A person with cases at two institutions, signed in at institution B's kiosk, reaches
    nothing of their case at institution A; a closed case ends a kiosk session it alone allowed."""
    w = env.world
    dual = await _enroll(env.console, "Two institutions", "participant", "offender", institution_id=w.institution_id,
                         device=False)
    env.tally.secrets.add(str(dual.passphrase))
    case_a = await _new_case(env.console, w.institution_id, [w.victim.person_id, dual.person_id],
                             [w.mediator.person_id])
    victim_b = await _enroll(env.console, "B other", "participant", "victim")
    case_b = await _new_case(env.console, env.institution_b, [victim_b.person_id, dual.person_id],
                             [env.mediator_b.person_id])
    item_a = await _letter(env.victim, case_a, dual.person_id, b"for the dual person at A")
    await env.mediator.release(item_a)
    at_b = await _login(w, dual, token=env.terminal_b, kiosk=True)
    env.extra_clients.append(at_b)
    h = _h(at_b)
    for path in (f"/v1/items/{item_a}", f"/v1/items/{item_a}/delivery", f"/v1/items/{item_a}/delivery/content",
                 f"/v1/cases/{case_a}", f"/v1/directory/{w.victim.person_id}", f"/v1/directory/{w.mediator.person_id}"):
        status, body, _ = await env.request("kiosk-reach", "GET", path, headers=h)
        if status != 404:
            env.tally.find(f"[kiosk reach] institution B's kiosk: GET {path.split('/')[2]}… of case A: {status}")
    for path in ("/v1/inbox", "/v1/me", "/v1/cases", "/v1/items/sent"):
        status, body, _ = await env.request("kiosk-reach", "GET", path, headers=h)
        if item_a.encode() in body or case_a.encode() in body:
            env.tally.find(f"[kiosk reach] institution B's kiosk lists case A's ids in {path}")
    # Case B closes: the kiosk at B no longer serves them, on the very next request.
    await env.request("kiosk-reach", "POST", f"/v1/cases/{case_b}/status", headers=_h(env.console),
                      json_body={"status": "closed"})
    status, _, _ = await env.request("kiosk-reach", "GET", "/v1/me", headers=h)
    status2, _, _ = await env.request("kiosk-reach", "GET", f"/v1/people/{dual.person_id}/key-bundle",
                                      headers={"X-Relay-Device": env.terminal_b})
    if status != 401 or status2 != 404:
        env.tally.find(f"[kiosk reach] after case B closed, B's kiosk session answered {status}, the bundle {status2}")
    at_b.session_token = None


# -- protocol ------------------------------------------------------------------------------------


async def _raw(env: Env, payload: bytes, kind: str, *, timeout: float = 10) -> list[tuple[int, dict[str, str], bytes]]:
    """Write ``payload`` to a new connection; read every answer until it closes."""
    reader, writer = await asyncio.open_connection(env.host, env.port)
    try:
        writer.write(payload)
        await writer.drain()
        data = b""
        try:
            async with asyncio.timeout(timeout):
                data = await reader.read()
        except TimeoutError:
            pass
    finally:
        writer.close()
    answers = []
    while data.startswith(b"HTTP/1."):
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0") or 0)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0] or b"0", 16)
                if size == 0:
                    rest = rest.partition(b"\r\n")[2]
                    break
                body += rest[:size]
                rest = rest[size + 2:]
        else:
            body, rest = rest[:length], rest[length:]
        answers.append((status, headers, body))
        env.tally.check(kind, f"raw {payload[:50]!r}", status, headers.get("content-type", "").split(";")[0],
                        body, headers)
        data = rest
    return answers


def _bomb() -> bytes:
    """gzip of a JSON body that inflates to 100 MiB (about 100 KiB on the wire)."""
    import zlib
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    piece = b" " * (1024 * 1024)
    return packer.compress(b"{") + b"".join(packer.compress(piece) for _ in range(100)) + packer.flush()


_BOMB = _bomb()


def _req(method: str, path: str, headers: dict[str, str], body: bytes = b"", *, close: bool = False) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: relay"] + [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PATCH", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def attack_ranges(env: Env) -> None:
    w = env.world
    item_id = await _letter(env.victim, w.case_id, w.offender.person_id, b"r" * 5000)
    path = f"/v1/items/{item_id}/content"
    status, whole, headers = await env.request("range", "GET", path, headers=_h(env.victim))
    etag, modified = headers.get("ETag", ""), headers.get("Last-Modified", "")
    n = len(whole)
    cases = ["bytes=0-0,5-6", "bytes=0-5,3-8", "bytes=0-10,0-10,0-10", "bytes=-5", "bytes=-0", f"bytes={n}-",
             f"bytes={n - 1}-", "bytes=0-99999999999999999999999", "bytes=-99999999999999999999",
             "bytes=--1", "bytes=-1-2", "bytes=5-", "bytes=", "bytes=a-b", "items=0-5", "bytes=0-5, 7-",
             "bytes=" + ",".join(f"{i}-{i}" for i in range(400)), "bytes=1-0", "bytes=0-" + "9" * 5000,
             "bytes=+1-2", "bytes= 0-5", "bytes=0x10-0x20", "bytes=0-5\t", "bytes=٣-٥", "bytes=²-5"]
    for rng in cases:
        for extra in ({}, {"If-Range": etag}, {"If-Range": '"other"'}, {"If-Range": modified},
                      {"If-Range": "Thu, 01 Jan 1970 00:00:00 GMT"}, {"If-Range": "garbage " + MARKER}):
            status, body, hdrs = await env.request("range", "GET", path,
                                                   headers={**_h(env.victim), "Range": rng, **extra},
                                                   what=f"Range {rng[:40]} {extra}")
            if status == 206:
                got = hdrs.get("Content-Range", "")
                try:
                    span, total = got.split(" ", 1)[1].split("/")
                    first, last = (int(x) for x in span.split("-"))
                except ValueError:
                    env.tally.find(f"[range] {rng}: 206 with Content-Range {got!r}")
                    continue
                if body != whole[first:last + 1] or int(total) != n:
                    env.tally.find(f"[range] {rng}: 206 body is not bytes {first}-{last} of the file")
            elif status == 200 and body != whole:
                env.tally.find(f"[range] {rng}: 200 with a body that is not the file")
    for extra in ({"If-None-Match": etag}, {"If-Modified-Since": modified}, {"If-Match": etag + ", \"x\""},
                  {"If-None-Match": "*"}, {"If-Unmodified-Since": "not a date " + MARKER}):
        await env.request("range", "GET", path, headers={**_h(env.victim), **extra})
    # A partial download of a delivery once the recipient's consent is withdrawn: refused too.
    case_id = await _new_case(env.console, w.institution_id, [w.victim.person_id, w.offender.person_id],
                              [w.mediator.person_id])
    item_id = await _letter(env.victim, case_id, w.offender.person_id, b"d" * 3000)
    await env.mediator.release(item_id)
    status, _, h = await env.request("range", "GET", f"/v1/items/{item_id}/delivery/content",
                                     headers={**_h(env.offender), "Range": "bytes=0-99"})
    await env.console.call("POST", f"/v1/cases/{case_id}/participants/{w.offender.person_id}/consent",
                           json_body={"consent": "withdrawn"})
    for extra in ({"Range": "bytes=100-"}, {"Range": "bytes=100-", "If-Range": h.get("ETag", "")},
                  {"If-None-Match": h.get("ETag", "")}, {"If-Modified-Since": h.get("Last-Modified", "")}):
        status, _, _ = await env.request("range", "GET", f"/v1/items/{item_id}/delivery/content",
                                         headers={**_h(env.offender), **extra})
        if status != 404:
            env.tally.find(f"[range] resuming a delivery after a withdrawal: {status} with {extra}")


async def attack_streams(env: Env) -> None:
    """A delivery still being sent when deliveries stop: a 12 MiB letter's download, read slowly
    through a small receive buffer (most of it still on the relay's side), then a withdrawal of
    consent, a pause or a closed case. Once the change is acknowledged, the rest must not come."""
    w = env.world
    for change in ("withdrawal", "pause", "close", None):
        case_id = await _new_case(env.console, w.institution_id, [w.victim.person_id, w.offender.person_id],
                                  [w.mediator.person_id])
        item_id = await _letter(env.victim, case_id, w.offender.person_id, os.urandom(12 * 1024 * 1024))
        await env.mediator.release(item_id)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (env.host, env.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=32 * 1024)
        lines = "".join(f"{k}: {v}\r\n" for k, v in _h(env.offender).items())
        writer.write(f"GET /v1/items/{item_id}/delivery/content HTTP/1.1\r\nHost: relay\r\n{lines}"
                     "Connection: close\r\n\r\n".encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        env.tally.by_kind["streams"] += 1
        length = next((int(line.split(":", 1)[1]) for line in head.split("\r\n")
                       if line.lower().startswith("content-length:")), 0)
        received = len(await reader.readexactly(64 * 1024))
        await asyncio.sleep(0.2)
        if change == "withdrawal":
            await env.console.call("POST", f"/v1/cases/{case_id}/participants/{w.offender.person_id}/consent",
                                   json_body={"consent": "withdrawn"})
        elif change == "pause":
            await env.mediator.call("POST", f"/v1/cases/{case_id}/pause",
                                    json_body={"paused": True, "reason": "safety-assessment"})
        elif change == "close":
            await env.console.call("POST", f"/v1/cases/{case_id}/status", json_body={"status": "closed"})
        try:
            while chunk := await asyncio.wait_for(reader.read(1 << 20), 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        writer.close()
        if change is not None and received > length // 2:
            env.tally.find(f"[streams] a delivery under way kept coming after a {change}: "
                           f"{received} of {length} bytes")
        if change is None and received != length:
            env.tally.find(f"[streams] a delivery with nothing changed ended short: {received} of {length} bytes")


async def attack_framing(env: Env) -> None:
    """Content-Length against Transfer-Encoding, duplicated headers, pipelining, HEAD, methods, paths."""
    v = _h(env.victim)
    m = _h(env.mediator)
    smuggled = _req("GET", "/v1/me", v)
    payloads = [
        # CL and TE both: TE wins, or the request is refused; the smuggled GET must not run as a second request.
        b"POST /v1/auth/challenge HTTP/1.1\r\nHost: r\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n" + smuggled,
        b"POST /v1/auth/challenge HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
        b"\r\n\r\n0\r\n\r\n",
        b"POST /v1/auth/challenge HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"POST /v1/auth/challenge HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        b"POST /v1/auth/challenge HTTP/1.1\r\nHost: r\r\nTransfer-Encoding:  chunked\r\nContent-Length: 0\r\n\r\n"
        b"5\r\n{\"a\":\r\n0\r\n\r\n",
        b"POST /v1/auth/challenge HTTP/1.1\r\nHost: r\r\nContent-Length: -1\r\n\r\n",
        b"POST /v1/auth/challenge HTTP/1.1\r\nHost: r\r\nContent-Length: +4\r\n\r\n{}{}",
        b"POST /v1/auth/challenge HTTP/1.1\r\nHost: r\r\nContent-Length: 0x4\r\n\r\n{}{}",
        b"POST /v1/auth/challenge HTTP/1.1\r\nHost: r\r\nContent-Length: 99999999999999999999999\r\n\r\n{}",
        b"POST /v1/auth/challenge HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"ffffffffffffffffffff\r\nab\r\n0\r\n\r\n",
        b"POST /v1/auth/challenge HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n2;" + b"e" * 9000
        + b"\r\n{}\r\n0\r\n\r\n",
        b"GET /v1/me HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\n\r\nhello" + smuggled,
        b"GET /v1/me HTTP/1.0\r\n\r\n",
        b"GET /v1/me\r\n\r\n",
        b"GET  /v1/me HTTP/1.1\r\nHost: r\r\n\r\n",
        b"GET /v1/me HTTP/1.1\r\nHost: r\r\n Folded: continuation\r\n\r\n",
        b"GET /v1/me HTTP/1.1\nHost: r\n\n",
        b"GET /v1/me HTTP/1.1\r\nHost: r\r\nX-Relay-Device : x\r\n\r\n",
        b"GET /v1/me HTTP/1.1\r\nHost: r\r\nX-Relay-Device: \x00\x01\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: r\r\n\r\n",
        b"CONNECT relay:443 HTTP/1.1\r\nHost: r\r\n\r\n",
        b"GET http://evil.example/v1/me HTTP/1.1\r\nHost: r\r\n\r\n",
        b"GET /v1/me HTTP/1.1\r\nHost: r\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        b"GET /v1/me HTTP/1.1\r\nHost: r\r\nExpect: 100-continue\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET /v1/me HTTP/1.1\r\nHost: r\r\nExpect: " + MARKER.encode() + b"\r\n\r\n",
        b"GET /nowhere HTTP/1.1\r\nHost: r\r\nExpect: 100-continue, " + MARKER.encode() + b"\r\n\r\n",
        b"POST /v1/auth/challenge HTTP/1.1\r\nHost: r\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}",
        b"POST /v1/bootstrap HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n" % len(_BOMB) + _BOMB,
        b"POST /v1/bootstrap HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: 7\r\n\r\nnotgzip",
        b"POST /v1/bootstrap HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Encoding: br\r\n"
        b"Content-Length: 2\r\n\r\n{}",
    ]
    for payload in payloads:
        answers = await _raw(env, payload + _req("GET", "/healthz", {}, close=True), "framing")
        for status, _, body in answers:
            if status == 200 and b'"person_id"' in body:
                env.tally.find(f"[framing] a smuggled request ran: {payload[:60]!r}")
    # Duplicated credentials: two device tokens, two bearers, of different people.
    dup = ("GET /v1/me HTTP/1.1\r\nHost: r\r\nX-Relay-Device: {d1}\r\nX-Relay-Device: {d2}\r\n"
           "Authorization: Bearer {s1}\r\nAuthorization: Bearer {s2}\r\nConnection: close\r\n\r\n")
    for d1, d2, s1, s2 in ((env.victim.device_token, env.mediator.device_token, env.victim.session_token,
                            env.mediator.session_token),
                           (env.mediator.device_token, env.victim.device_token, env.mediator.session_token,
                            env.victim.session_token)):
        answers = await _raw(env, dup.format(d1=d1, d2=d2, s1=s1, s2=s2).encode(), "duplicate-headers")
        if answers and answers[0][0] != 401:
            env.tally.find(f"[duplicate headers] two X-Relay-Device and two Authorization headers: "
                           f"{answers[0][0]} (the relay read one copy; a proxy in front may read the other)")
    # Pipelining: me, sign out, me on one connection; the third must be refused.
    client = await _login(env.world, env.world.victim)
    h = _h(client)
    answers = await _raw(env, _req("GET", "/v1/me", h) + _req("DELETE", "/v1/auth/session", h)
                         + _req("GET", "/v1/me", h) + _req("GET", "/v1/inbox", h, close=True), "pipelining")
    statuses = [a[0] for a in answers]
    if statuses != [200, 204, 401, 401]:
        env.tally.find(f"[pipelining] me, sign-out, me, inbox answered {statuses}")
    client.session_token = None
    await client.close()
    # HEAD and other methods on every route, with real ids.
    real = {"item_id": await _letter(env.victim, env.world.case_id, env.world.offender.person_id),
            "case_id": env.world.case_id, "person_id": env.world.victim.person_id,
            "device_id": str(env.victim.device_token).split(".")[0], "condition_id": "cnd_" + "0" * 16,
            "approval_id": "apr_" + "0" * 16, "upload_id": "upl_" + "0" * 16}
    for method, template, _ in ROUTES:
        path = template
        for name, value in real.items():
            path = path.replace("{" + name + "}", value)
        for other in ("HEAD", "PUT", "TRACE", "PROPFIND", "PATCH", "OPTIONS", "FOO"):
            if other == method:
                continue
            for headers in (v, m, _h(env.console)):
                await env.request("methods", other, path, headers=headers)
    # Path tricks.
    item = real["item_id"]
    tricks = ["/v1/./me", "/v1/../v1/me", "//v1/me", "/v1//me", "/v1/me/", "/V1/ME", "/v1/me%00", "/v1/me;x=1",
              "/v1/%6de", "/v1/items/%2e%2e/sent", f"/v1/items/{item}%2Fcontent", f"/v1/items/{item}/%2e%2e/sent",
              f"/v1/items/{item.upper()}", f"/v1/items/{item}%20", "/v1/items/itm_０００００００００００００００１",
              "/v1/items/" + "%" * 30, "/v1/items/%ZZ", "/v1/items/%c0%ae%c0%ae", f"/v1/items/{item}?{MARKER}=1",
              f"/v1/items/{item}#{MARKER}", "/v1/me?" + "a=1&" * 2000, "/v1/directory/..%5c..%5cetc",
              "/v1/cases/" + env.world.case_id + "/timeline?after=-1&limit=0", "/v1/cases/" + env.world.case_id
              + "/timeline?after=99999999999&limit=1000&limit=1", f"/v1/{MARKER}/../me"]
    for path in tricks:
        for headers in (v, m):
            await env.request("paths", "GET", path, headers=headers)
    # Request values in bodies: a label that is stored, and fields that are refused.
    console = _h(env.console)
    await env.request("values", "POST", "/v1/institutions", headers=console, json_body={"name": f"Inst {MARKER}"})
    for body in ({"name": MARKER, "extra": MARKER}, {"kind": MARKER, "label": MARKER, "person_id": MARKER},
                 {"referral_source": f"offender {MARKER}", "institution_id": env.institution_b},
                 {"status": MARKER}, {"consent": MARKER}, {"code": MARKER}, {"person_id": "per_" + MARKER}):
        for path in ("/v1/institutions", "/v1/devices", "/v1/cases", f"/v1/cases/{env.world.case_id}/status",
                     f"/v1/cases/{env.world.case_id}/participants/{env.world.victim.person_id}/consent"):
            await env.request("values", "POST", path, headers=console, json_body=body)
        await env.request("values", "POST", "/v1/kiosk/identify", headers={"X-Relay-Device": env.terminal_b},
                          json_body=body)
        await env.request("values", "POST", "/v1/auth/challenge", headers=v, json_body=body)


async def attack_connections(env: Env, slow: int, many: int) -> None:
    """Slow clients (headers one byte a while) and many connections must not starve a normal client."""
    async def slowloris() -> None:
        try:
            reader, writer = await asyncio.open_connection(env.host, env.port)
        except OSError:
            return
        try:
            for byte in b"GET /v1/me HTTP/1.1\r\nHost: relay\r\nX-A: " + b"a" * 200:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.2)
                if reader.at_eof():
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
        env.tally.by_kind["slowloris"] += 1

    held = [asyncio.create_task(slowloris()) for _ in range(slow)]
    await asyncio.sleep(0.5)
    latencies = []
    for _ in range(20):
        start = time.perf_counter()
        await env.request("during-slowloris", "GET", "/v1/me", headers=_h(env.victim))
        latencies.append(time.perf_counter() - start)
    if max(latencies) > 2:
        env.tally.find(f"[slowloris] a normal request took {max(latencies):.2f} s with {slow} slow clients")
    env.tally.notes.append(f"with {slow} slow clients, /v1/me took {statistics.median(latencies) * 1000:.1f} ms "
                           f"median, {max(latencies) * 1000:.1f} ms at worst")
    # The slow clients are cut off after the header timeout (3 s here) rather than held forever.
    start = time.perf_counter()
    await asyncio.gather(*held)
    if time.perf_counter() - start > 10:
        env.tally.find("[slowloris] slow clients were held past the header timeout")
    # Many connections at once, each a real request.
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def one(i: int) -> None:
            path = ("/v1/me", "/v1/inbox", "/healthz", "/v1/items/sent")[i % 4]
            headers = _h(env.offender) if path == "/v1/inbox" else _h(env.victim)
            try:
                async with http.get(env.url + path, headers=headers) as r:
                    body = await r.read()
                    env.tally.check("many-connections", path, r.status, r.content_type, body, r.headers)
            except aiohttp.ClientError as exc:
                env.tally.find(f"[many connections] {type(exc).__name__}")
        await asyncio.gather(*(one(i) for i in range(many)))


# -- logs ----------------------------------------------------------------------------------------


def scan_logs(env: Env, text: str) -> None:
    w = env.world
    people = [w.coordinator, w.mediator, w.victim, w.offender, env.mediator2, env.stranger, env.mediator_b]
    secret_like = {"device token": [str(p.device_token) for p in people if p.device_token] + [w.terminal_token,
                                                                                             env.terminal_b],
                   "session token": [str(c.session_token) for c in (env.console, env.mediator, env.victim,
                                                                    env.offender) if c.session_token],
                   "passphrase": [str(p.passphrase) for p in people if p.passphrase],
                   "kiosk code": [str(p.kiosk_code) for p in people if p.kiosk_code],
                   "person id": [p.person_id for p in people],
                   "case id": [w.case_id, env.case_b],
                   "request value": [MARKER],
                   "client address": ["127.0.0.1"],
                   "traceback": ["Traceback"]}
    secret_like["public key"] = [envelope.b64e(p.identity.public.sign_pk) for p in people] + \
        [envelope.b64e(p.identity.public.box_pk) for p in people]
    secret_like["key bundle"] = env.key_bundles
    for token in secret_like["device token"] + secret_like["session token"]:
        secret_like.setdefault("token secret", []).append(token.split(".", 1)[-1])
    for what, values in secret_like.items():
        hits = [v[:12] for v in values if v and v in text]
        if hits:
            line = next(line for line in text.splitlines() if any(h in line for h in hits))
            env.tally.find(f"[logs] the log holds a {what}: {hits[:3]} e.g. {line[:240]}")
    with env.db() as db:
        ids = [r[0] for r in db.execute("SELECT id FROM items UNION SELECT id FROM people UNION SELECT id FROM "
                                        "devices UNION SELECT id FROM cases")]
    hits = [i for i in ids if i in text]
    if hits:
        env.tally.find(f"[logs] the log names ids: {hits[:5]}")
    lines = text.splitlines()
    bad = [line for line in lines if not line.startswith("{")]
    if bad:
        env.tally.find(f"[logs] {len(bad)} line(s) not JSON, e.g. {bad[0][:160]}")
    env.tally.notes.append(f"log scanned: {len(lines)} lines")


# -- the run -------------------------------------------------------------------------------------


async def run(quick: bool) -> Tally:
    scale = 1 if quick else 3
    tally = Tally()
    log_stream = io.StringIO()
    handler = relay_logs.configure("json", "DEBUG", stream=log_stream)
    with tempfile.TemporaryDirectory(prefix="relay-attack-") as scratch:
        data_dir = Path(scratch) / "relay-data"
        settings = Settings(data_dir=data_dir, header_timeout_seconds=3, body_idle_seconds=3,
                            quota_items_per_day=100_000, quota_mediator_items_per_day=100_000, disk_reserve_mb=0,
                            bundle_fetches_per_terminal_per_hour=1000)
        codes: list[str] = []
        clock = Clock()
        app = create_app(settings, clock=clock, bootstrap_printer=codes.append)
        async with running(app, settings, host="127.0.0.1", port=0) as (host, port):
            url = f"http://{host}:{port}"
            world = await build_world(url, codes[0], kdf=TEST_KDF)
            tally.secrets |= {codes[0], str(world.victim.device_token), str(world.mediator.device_token),
                              str(world.coordinator.device_token), world.terminal_token, str(world.offender.passphrase)}
            console = await world.session(world.coordinator)
            mediator2 = await _enroll(console, "Second mediator", "mediator", None)
            await console.call("POST", f"/v1/cases/{world.case_id}/mediators",
                               json_body={"person_id": mediator2.person_id})
            institution_b = (await console.call("POST", "/v1/institutions", json_body={"name": "Institution B"}))["id"]
            terminal_b = (await console.call("POST", "/v1/devices", json_body={
                "kind": "terminal", "institution_id": institution_b, "label": "B kiosk"}))["device_token"]
            stranger = await _enroll(console, "B participant", "participant", "offender",
                                     institution_id=institution_b, device=False)
            victim_b = await _enroll(console, "B victim", "participant", "victim")
            mediator_b = await _enroll(console, "B mediator", "mediator", None)
            case_b = await _new_case(console, institution_b, [stranger.person_id, victim_b.person_id],
                                     [mediator_b.person_id])
            tally.secrets |= {terminal_b, str(stranger.passphrase), str(mediator2.device_token),
                              str(mediator_b.device_token)}
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
                env = Env(url=url, host=host, port=port, data_dir=data_dir, clock=clock, world=world, tally=tally,
                          http=http, console=console, mediator=await world.session(world.mediator),
                          victim=await world.session(world.victim),
                          offender=await world.session(world.offender, on_terminal=True), mediator2=mediator2,
                          institution_b=institution_b, terminal_b=terminal_b, stranger=stranger,
                          mediator_b=mediator_b, case_b=case_b)
                for c in (env.console, env.mediator, env.victim, env.offender):
                    tally.secrets.add(str(c.session_token))
                steps = [
                    ("races: release against withdrawal, condition, pause, close, revocation, sign-out",
                     race_release_against(env, 8 * scale)),
                    ("races: a release still arriving when the mediator's credentials end",
                     race_release_still_arriving(env, 3 * scale)),
                    ("races: two decisions on one item", race_two_decisions(env, 6 * scale)),
                    ("races: receipts", race_receipts(env, 2 * scale)),
                    ("uploads: concurrent PATCH, termination, expiry, other owners", attack_uploads(env, 2 * scale)),
                    ("tokens after sign-out and revocation", attack_tokens(env, 2 * scale)),
                    ("another case's and institution's ids", attack_cross_tenant(env, scale)),
                    ("kiosk codes typed all at once", attack_kiosk_guessing(env, 40 * scale)),
                    ("single-use things used at once", attack_single_use(env, 20 * scale)),
                    ("a kiosk of one institution and a person of two", attack_kiosk_reach(env)),
                    ("Range and conditional requests", attack_ranges(env)),
                    ("deliveries under way when deliveries stop", attack_streams(env)),
                    ("framing, pipelining, methods, paths", attack_framing(env)),
                    ("slow clients and many connections", attack_connections(env, 60 * scale, 200 * scale)),
                    ("upload expiry (moves the clock: last)", attack_upload_expiry(env)),
                ]
                for name, step in steps:
                    started = time.perf_counter()
                    before = sum(tally.by_kind.values())
                    try:
                        await step
                    except Exception as exc:  # the step's own bug or an answer it did not expect
                        tally.find(f"[{name}] the step stopped: {type(exc).__name__}: {str(exc)[:200]}")
                    if os.environ.get("ATTACK_DEBUG"):
                        async with http.get(url + "/v1/me", headers=_h(env.victim)) as r:
                            print("victim /v1/me", r.status, file=sys.stderr)
                    print(f"  {name}: {sum(tally.by_kind.values()) - before} requests, "
                          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
                for c in [env.mediator, env.victim, env.offender, *env.extra_clients]:
                    await c.close()
                await console.close()
                scan_logs(env, log_stream.getvalue())
    logging.getLogger().removeHandler(handler)
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    random.seed(args.seed)
    started = time.perf_counter()
    tally = asyncio.run(run(args.quick))
    total = sum(tally.by_kind.values())
    print(f"{total} requests in {time.perf_counter() - started:.0f} s; by kind:")
    for kind, count in sorted(tally.by_kind.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:20} {count}")
    print(f"statuses: {dict(sorted(tally.statuses.items()))}")
    for note in tally.notes:
        print(f"note: {note}")
    print(f"{len(tally.findings)} finding(s)")
    for finding in tally.findings:
        print(f"FINDING {finding}")
    return 1 if tally.findings else 0


if __name__ == "__main__":
    sys.exit(main())
