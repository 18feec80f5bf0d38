"""Authorization matrix: every route of the relay against every kind of caller.

DESIGN.md "Trust model" and promise 3: only the people the trust model names reach an object,
and everyone else learns nothing, not even that it exists. ``PROBES`` below is the table: each
row is one route aimed at one real object (a case, a person, an item in a given state) with the
exact set of callers that must succeed. Every other caller must get 401, 403 or 404 (never 2xx,
never 5xx) as an RFC 9457 problem that carries none of the target's data.
``test_matrix_covers_every_route`` fails when a route is added to ``relay.routes.ROUTES``
without a row here.

One relay and one world serve the whole module (about a thousand requests); the focused tests
at the end look at the cross-case, cross-institution, revoked, expired and forged cases more
closely, including what the allowed callers' *lists* show.
"""

from __future__ import annotations

import io
import json
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from relay import envelope, i18n, ids
from relay.client import passphrase
from relay.client.kdf import TEST_KDF
from relay.client.scenario import Someone, World, build_world
from relay.client.sdk import Client, ProblemError
from relay.clock import stamp
from relay.envelope import Domain, Identity
from relay.server.app import create_app
from relay.server.routes import ROUTES
from relay.server.settings import Settings

from .conftest import MovableClock
from .media_fixtures import encode

MODULE = pytest.mark.asyncio(loop_scope="module")
PROBLEM = "urn:mediation-relay:problem:"

# -- the callers ---------------------------------------------------------------------------------

# Credentials that do not hold: every guarded route answers 401 ``unauthenticated``.
BAD_DEVICE = frozenset({"anonymous", "wrong_device_secret", "revoked_device"})
# An approved device, but no usable session on it: 401 (or 403 where the device kind is wrong).
BAD_SESSION = frozenset({"no_session", "expired_session", "session_of_other_device", "revoked_person"})
# Signed in properly.
LIVE = frozenset({"coordinator", "mediator", "unassigned_mediator", "victim", "offender_on_terminal",
                  "other_case_participant", "other_institution_participant"})
CALLERS = (*sorted(BAD_DEVICE), *sorted(BAD_SESSION), *sorted(LIVE))

ALL = frozenset(CALLERS)
NOBODY: frozenset[str] = frozenset()
COORDINATOR = frozenset({"coordinator"})
PARTICIPANTS = frozenset({"victim", "offender_on_terminal", "other_case_participant",
                          "other_institution_participant"})
MEDIATORS = frozenset({"mediator", "unassigned_mediator"})
CASE_A = frozenset({"coordinator", "mediator", "victim", "offender_on_terminal"})
# Callers whose device may serve the person it belongs to: they may ask for a challenge and sign in.
SIGN_IN = LIVE | {"no_session", "expired_session", "session_of_other_device"}

KEEP = object()  # Req.session default: the caller's own session token


@dataclass(frozen=True)
class Caller:
    name: str
    device: str | None  # X-Relay-Device
    session: str | None  # Authorization: Bearer
    person: Someone | None  # whose id and key this caller would naturally use

    @property
    def device_id(self) -> str:
        assert self.device
        return self.device.split(".", 1)[0]


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes
    request_id: str | None = None  # the X-Request-Id header

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Req:
    path: str
    json: Any = None
    form: Callable[[], aiohttp.MultipartWriter] | None = None
    session: Any = KEEP
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes | None = None


@dataclass
class Env:
    url: str
    http: aiohttp.ClientSession
    world: World
    settings: Settings
    clock: MovableClock
    data_dir: Path
    bootstrap_code: str
    callers: dict[str, Caller] = field(default_factory=dict)
    people: dict[str, Someone] = field(default_factory=dict)
    cases: dict[str, str] = field(default_factory=dict)
    items: dict[str, str] = field(default_factory=dict)
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    institution_b: str = ""
    spare_expired: str = ""
    terminal_b: str = ""
    clients: dict[str, Client] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)
    kiosk_codes: dict[str, str] = field(default_factory=dict)

    async def raw(self, method: str, path: str, *, device: str | None = None, session: str | None = None,
                  json_body: Any = None, form: aiohttp.MultipartWriter | bytes | None = None,
                  headers: dict[str, str] | None = None) -> Answer:
        headers = {"Accept-Language": "en", **(headers or {})}
        if device:
            headers["X-Relay-Device"] = device
        if session:
            headers["Authorization"] = f"Bearer {session}"
        async with self.http.request(method, self.url + path, json=json_body, data=form,
                                     headers=headers) as response:
            return Answer(response.status, response.headers.get("Content-Type", ""), await response.read(),
                          response.headers.get("X-Request-Id"))

    async def send(self, method: str, req: Req, caller: Caller) -> Answer:
        session = caller.session if req.session is KEEP else req.session
        return await self.raw(method, req.path, device=caller.device, session=session, json_body=req.json,
                              form=req.form() if req.form else req.data, headers=req.headers)

    async def sign_in(self, who: Someone, device: str) -> str:
        """A fresh session token for ``who`` on ``device`` (no key bundle fetched: we hold the key)."""
        challenge = await self.raw("POST", "/v1/auth/challenge", device=device, json_body={"person_id": who.person_id})
        assert challenge.status == 201, challenge.text
        statement = envelope.login_statement(challenge=challenge.json()["challenge"],
                                             device_id=device.split(".", 1)[0], person_id=who.person_id)
        opened = await self.raw("POST", "/v1/auth/session", device=device, json_body={
            "challenge_id": challenge.json()["challenge_id"],
            "signature": envelope.sign(Domain.LOGIN, statement, who.identity.signing_key)})
        assert opened.status == 201, opened.text
        return str(opened.json()["session_token"])

    async def client(self, who: Someone, device: str) -> Client:
        """A logged-in SDK client (for setting things up), closed at the end of the module."""
        client = Client(self.url, device, trust_root=self.world.trust_root, http=self.http)
        await client.__aenter__()
        await client.login(who.person_id, _clone(who.identity))
        self.clients[f"{who.person_id}@{device.split('.', 1)[0]}"] = client
        return client

    @property
    def admin(self) -> Client:
        return self.clients["admin"]

    def security_count(self, action: str, device_id: str) -> int:
        """How many times a refusal was recorded for this device: its own entries, the repeats
        written as ``security.repeated`` entries, and the repeats still counted in the window."""
        db = sqlite3.connect(f"file:{self.data_dir / 'relay.sqlite3'}?mode=ro", uri=True)
        try:
            own = db.execute("SELECT COUNT(*) FROM audit_log WHERE action = ? AND actor_device = ?",
                             (action, device_id)).fetchone()[0]
            written = db.execute("SELECT COALESCE(SUM(CAST(subject AS INTEGER)), 0) FROM audit_log WHERE action ="
                                 " 'security.repeated' AND (code = ? OR code LIKE ?) AND actor_device = ?",
                                 (action, action + ":%", device_id)).fetchone()[0]
            counted = db.execute("SELECT COALESCE(SUM(repeats), 0) FROM security_tallies WHERE action = ?"
                                 " AND actor_device = ?", (action, device_id)).fetchone()[0]
            return int(own + written + counted)
        finally:
            db.close()

    def audit(self, action: str) -> list[dict[str, Any]]:
        db = sqlite3.connect(f"file:{self.data_dir / 'relay.sqlite3'}?mode=ro", uri=True)
        try:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM audit_log WHERE action = ? ORDER BY seq", (action,)).fetchall()
            return [dict(r) for r in rows]
        finally:
            db.close()


def _clone(identity: Identity) -> Identity:
    """A copy the SDK may wipe at sign-out without wiping the world's key."""
    return Identity(SigningKey(bytes(identity.signing_key)), PrivateKey(bytes(identity.box_key)))


def _now() -> str:
    return stamp(datetime.now(UTC))


def _multipart(meta: dict[str, Any], content: bytes | None) -> aiohttp.MultipartWriter:
    form = aiohttp.MultipartWriter("form-data")
    form.append_json(meta).set_content_disposition("form-data", name="meta")
    if content is not None:
        form.append(content, {"Content-Type": "application/octet-stream"}).set_content_disposition(
            "form-data", name="content", filename="sealed.bin")
    return form


# -- the world -----------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    data_dir = tmp_path_factory.mktemp("authorization") / "relay-data"
    # The matrix sends a fresh letter for every caller of some rows: not what quotas are about.
    settings = Settings(data_dir=data_dir, quota_items_per_day=10_000)
    clock = MovableClock()
    codes: list[str] = []
    server = TestServer(create_app(settings, clock=clock, bootstrap_printer=codes.append))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            url = str(server.make_url("")).rstrip("/")
            world = await build_world(url, codes[0], kdf=TEST_KDF, http=http)
            env = Env(url=url, http=http, world=world, settings=settings, clock=clock, data_dir=data_dir,
                      bootstrap_code=codes[0])
            try:
                await _populate(env)
                yield env
            finally:
                for client in env.clients.values():
                    await client.close()
    finally:
        await server.close()


async def _populate(env: Env) -> None:
    w = env.world
    env.people.update(coordinator=w.coordinator, mediator=w.mediator, victim=w.victim, offender=w.offender)
    env.cases["a"] = w.case_id

    # Sessions that then sit idle past the limit: taken first, before the clock moves on (a spare
    # one for the sign-out row, so that a bug there cannot hide a bug elsewhere).
    expired = await env.sign_in(w.victim, str(w.victim.device_token))
    env.spare_expired = await env.sign_in(w.victim, str(w.victim.device_token))
    env.clock.advance(seconds=env.settings.session_idle_seconds + 1)

    admin = Client(env.url, w.coordinator.device_token, trust_root=w.trust_root, http=env.http)
    await admin.__aenter__()
    env.clients["admin"] = admin
    await admin.login(w.coordinator.person_id, _clone(w.coordinator.identity))

    async def enroll(key: str, label: str, role: str, relation: str | None = None, *,
                     institution_id: str | None = None, device: bool = True) -> Someone:
        identity = Identity.generate()
        secret = passphrase.generate() if institution_id else None
        person = await admin.enroll(public=identity.public, label=label, role=role, relation=relation,
                                    institution_id=institution_id,
                                    key_bundle=TEST_KDF.seal(identity, secret) if secret else None)
        someone = Someone(label, person["id"], identity, passphrase=secret)
        if device:
            kind = {"mediator": "mediator_desk", "participant": "participant_device"}[role]
            registered = await admin.call("POST", "/v1/devices", json_body={
                "kind": kind, "person_id": person["id"], "label": f"{label} device"})
            someone.device_token = registered["device_token"]
        env.people[key] = someone
        return someone

    async def open_case(key: str, institution_id: str, referral: str, participants: list[Someone],
                        mediators: list[Someone]) -> str:
        case = await admin.call("POST", "/v1/cases", json_body={"referral_source": referral,
                                                                "institution_id": institution_id})
        for p in participants:
            await admin.call("POST", f"/v1/cases/{case['id']}/participants", json_body={"person_id": p.person_id})
        for m in mediators:
            await admin.call("POST", f"/v1/cases/{case['id']}/mediators", json_body={"person_id": m.person_id})
        env.cases[key] = case["id"]
        return str(case["id"])

    institution_b = await admin.call("POST", "/v1/institutions", json_body={"name": "Institution Beta North"})
    env.institution_b = institution_b["id"]
    terminal_b = await admin.call("POST", "/v1/devices", json_body={
        "kind": "terminal", "institution_id": env.institution_b, "label": "Institution Beta kiosk"})
    env.terminal_b = terminal_b["device_token"]

    other_mediator = await enroll("unassigned_mediator", "Unassigned Mediator Nadira", "mediator")
    other_participant = await enroll("other_case_participant", "Other Case Participant Olwen", "participant",
                                     "victim")
    beta_participant = await enroll("other_institution_participant", "Beta Participant Bartholomew",
                                    "participant", "offender", institution_id=env.institution_b, device=False)
    revokee = await enroll("revoked_person", "Revoked Participant Rosalind", "participant", "victim_family")
    # Case B: same institution as case A, another participant, another mediator.
    await open_case("b", w.institution_id, "victim", [other_participant], [other_mediator])
    # Case C: at institution B.
    await open_case("c", env.institution_b, "institutional", [beta_participant], [other_mediator])
    # A case for the coordinator's membership changes, so case A's membership stays as built.
    await open_case("scratch", w.institution_id, "community", [], [])
    await admin.call("POST", f"/v1/cases/{w.case_id}/participants", json_body={"person_id": revokee.person_id})

    # A device the victim used to have, with a session on it, then revoked.
    old_phone = await admin.call("POST", "/v1/devices", json_body={
        "kind": "participant_device", "person_id": w.victim.person_id, "label": "Victim's lost phone"})
    old_session = await env.sign_in(w.victim, old_phone["device_token"])
    await admin.call("POST", f"/v1/devices/{old_phone['id']}/revoke")

    # A person signed in on their own device, then revoked.
    revokee_session = await env.sign_in(revokee, str(revokee.device_token))
    await admin.call("POST", f"/v1/people/{revokee.person_id}/revoke")

    stolen = await env.sign_in(w.mediator, str(w.mediator.device_token))  # presented with the victim's device
    sessions = {
        "coordinator": (w.coordinator, str(w.coordinator.device_token)),
        "mediator": (w.mediator, str(w.mediator.device_token)),
        "unassigned_mediator": (other_mediator, str(other_mediator.device_token)),
        "victim": (w.victim, str(w.victim.device_token)),
        "offender_on_terminal": (w.offender, w.terminal_token),
        "other_case_participant": (other_participant, str(other_participant.device_token)),
        "other_institution_participant": (beta_participant, env.terminal_b),
    }
    victim_device = str(w.victim.device_token)
    env.callers = {
        "anonymous": Caller("anonymous", None, None, None),
        "wrong_device_secret": Caller("wrong_device_secret", victim_device.split(".")[0] + ".not-the-secret",
                                      "ses_0000000000000000.not-a-session", w.victim),
        "revoked_device": Caller("revoked_device", old_phone["device_token"], old_session, w.victim),
        "no_session": Caller("no_session", victim_device, None, w.victim),
        "expired_session": Caller("expired_session", victim_device, expired, w.victim),
        "session_of_other_device": Caller("session_of_other_device", victim_device, stolen, w.victim),
        "revoked_person": Caller("revoked_person", revokee.device_token, revokee_session, revokee),
    }
    for name, (who, device) in sessions.items():
        env.callers[name] = Caller(name, device, await env.sign_in(who, device), who)
    assert set(env.callers) == ALL
    for key in ("offender", "other_institution_participant"):
        issued = await admin.call("POST", f"/v1/people/{env.people[key].person_id}/kiosk-code")
        env.kiosk_codes[key] = issued["kiosk_code"]

    # Real items of case A in each state, sent and decided through the SDK.
    victim = await env.client(w.victim, victim_device)
    offender = await env.client(w.offender, w.terminal_token)
    mediator = await env.client(w.mediator, str(w.mediator.device_token))
    other = await env.client(other_participant, str(other_participant.device_token))
    env.clients["victim"], env.clients["mediator"] = victim, mediator

    async def send(client: Client, recipient: str, text: bytes, case_id: str = w.case_id) -> str:
        sent = await client.send(case_id=case_id, recipient=recipient, src=_bytes(text))
        return str(sent["id"])

    env.items["pending"] = await send(victim, w.offender.person_id, b"pending: still with the mediator")
    env.items["released"] = await send(offender, w.victim.person_id, b"released: passed on as written")
    await mediator.release(env.items["released"])
    env.items["returned"] = await send(victim, w.offender.person_id, b"returned: back to its writer")
    await mediator.return_to_sender(env.items["returned"], "Let us talk about this first.")
    env.items["to_mediators"] = await send(victim, "mediators", b"to the mediators: can we meet?")
    env.items["mediator_message"] = await send(mediator, w.offender.person_id, b"from the mediator")
    env.items["case_b_to_mediators"] = await send(other, "mediators", b"case B: a question", env.cases["b"])
    with tempfile.TemporaryDirectory() as scratch:  # a real clip, so the victim's client seals a poster frame
        clip = encode(Path(scratch) / "clip.mp4", seconds=1)
        with open(clip, "rb") as src:
            env.items["video"] = str((await victim.send(case_id=w.case_id, recipient=w.offender.person_id, src=src,
                                                        kind="video", content_type="video/mp4"))["id"])

    for name, reader in (("released", victim), ("mediator_message", offender)):
        view = await reader.call("GET", f"/v1/items/{env.items[name]}/delivery")
        env.decisions[name] = view["decision"]
        env.secrets.add(view["decision_signature"])
    for name, item_id in env.items.items():
        original = await (other if name.startswith("case_b") else mediator).call("GET", f"/v1/items/{item_id}")
        env.manifests[name] = original["manifest"]
        env.secrets |= {original["signature"], original["manifest"]["hash"],
                        *original["manifest"]["keys"].values()}

    # What no refusal may carry (the path a request names is echoed in ``instance`` and is excluded).
    for someone in env.people.values():
        env.secrets |= {someone.person_id, envelope.b64e(someone.identity.public.sign_pk),
                        envelope.b64e(someone.identity.public.box_pk)}
        if len(someone.label) > 12:  # the world's short labels ("Victim") are ordinary words
            env.secrets.add(someone.label)
    env.secrets |= {*env.cases.values(), *env.items.values(), "Institution A", "Institution Beta North",
                    "National unit coordinator", w.trust_root}


def _bytes(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


# -- request builders ----------------------------------------------------------------------------

Builder = Callable[[Env, Caller], Awaitable[Req]]
After = Callable[[Env, Caller, Req, bool], Awaitable[str | None]]


def _who(env: Env, caller: Caller, default: str = "victim") -> Someone:
    return caller.person or env.people[default]


async def _bootstrap(env: Env, caller: Caller) -> Req:
    """The first-start code again (already used): nobody may enroll a second root."""
    identity = Identity.generate()
    person_id = ids.new("person")
    doc = envelope.enrollment(person_id=person_id, role="coordinator", side=None,
                              sign_pk=envelope.b64e(identity.public.sign_pk),
                              box_pk=envelope.b64e(identity.public.box_pk), enrolled_by=person_id,
                              enrolled_at=_now())
    return Req("/v1/bootstrap", json={"code": env.bootstrap_code, "enrollment": doc, "label": "Second root",
                                      "device_label": "Second console",
                                      "enrollment_sig": envelope.sign(Domain.ENROLLMENT, doc, identity.signing_key)})


async def _challenge_self(env: Env, caller: Caller) -> Req:
    return Req("/v1/auth/challenge", json={"person_id": _who(env, caller).person_id})


async def _challenge_offender(env: Env, caller: Caller) -> Req:
    return Req("/v1/auth/challenge", json={"person_id": env.world.offender.person_id})


async def _open_session(env: Env, caller: Caller) -> Req:
    """The caller's own challenge, signed with their own key; where the caller cannot get one, the
    victim's challenge from the victim's device, properly signed, presented by the caller."""
    who, device = _who(env, caller), caller.device
    got = None
    if device:
        answer = await env.raw("POST", "/v1/auth/challenge", device=device, json_body={"person_id": who.person_id})
        got = answer.json() if answer.status == 201 else None
    if got is None:
        who, device = env.world.victim, str(env.world.victim.device_token)
        answer = await env.raw("POST", "/v1/auth/challenge", device=device, json_body={"person_id": who.person_id})
        assert answer.status == 201, answer.text
        got = answer.json()
    statement = envelope.login_statement(challenge=got["challenge"], device_id=device.split(".", 1)[0],
                                         person_id=who.person_id)
    return Req("/v1/auth/session", json={"challenge_id": got["challenge_id"],
                                         "signature": envelope.sign(Domain.LOGIN, statement, who.identity.signing_key)})


async def _close_session(env: Env, caller: Caller) -> Req:
    """Sign out of a fresh session, so that the caller's main one lives on for the other rows."""
    if caller.name in LIVE:
        assert caller.person and caller.device
        return Req("/v1/auth/session", session=await env.sign_in(caller.person, caller.device))
    if caller.name == "session_of_other_device":
        mediator = env.world.mediator
        return Req("/v1/auth/session", session=await env.sign_in(mediator, str(mediator.device_token)))
    if caller.name == "expired_session":
        return Req("/v1/auth/session", session=env.spare_expired)
    return Req("/v1/auth/session")


async def _after_close_session(env: Env, caller: Caller, req: Req, allowed: bool) -> str | None:
    if allowed:
        me = await env.raw("GET", "/v1/me", device=caller.device, session=req.session)
        if me.status != 401:
            return f"{caller.name}: the session still works after sign-out ({me.status})"
    elif caller.name == "session_of_other_device":
        me = await env.raw("GET", "/v1/me", device=env.world.mediator.device_token, session=req.session)
        if me.status != 200:
            return f"{caller.name}: presenting the session on another device ended it ({me.status})"
    return None


async def _new_institution(env: Env, caller: Caller) -> Req:
    return Req("/v1/institutions", json={"name": f"Institution {ids.new('case')[-8:]}"})


async def _new_person(env: Env, caller: Caller) -> Req:
    """An enrollment properly signed by the coordinator: only the guard stands in the way."""
    identity = Identity.generate()
    person_id = ids.new("person")
    coordinator = env.world.coordinator
    doc = envelope.enrollment(person_id=person_id, role="participant", side="victim",
                              sign_pk=envelope.b64e(identity.public.sign_pk),
                              box_pk=envelope.b64e(identity.public.box_pk), enrolled_by=coordinator.person_id,
                              enrolled_at=_now())
    return Req("/v1/people", json={
        "enrollment": doc, "enrollment_sig": envelope.sign(Domain.ENROLLMENT, doc, coordinator.identity.signing_key),
        "label": "Probe enrollee", "relation": "victim", "institution_id": None})


async def _after_new_person(env: Env, caller: Caller, req: Req, allowed: bool) -> str | None:
    people = {p["id"] for p in await env.admin.call("GET", "/v1/people")}
    if (req.json["enrollment"]["person_id"] in people) != allowed:
        return f"{caller.name}: enrollment recorded={not allowed}, expected {allowed}"
    return None


async def _disposable_person(env: Env, role: str = "participant") -> str:
    person = await env.admin.enroll(public=Identity.generate().public, label="Disposable person", role=role,
                                    relation="victim" if role == "participant" else None)
    return str(person["id"])


async def _revoke_person(env: Env, caller: Caller) -> Req:
    return Req(f"/v1/people/{await _disposable_person(env)}/revoke")


async def _after_revoke_person(env: Env, caller: Caller, req: Req, allowed: bool) -> str | None:
    person_id = req.path.split("/")[3]
    status = next(p["status"] for p in await env.admin.call("GET", "/v1/people") if p["id"] == person_id)
    if (status == "revoked") != allowed:
        return f"{caller.name}: person status is {status!r} after the call"
    return None


async def _new_device(env: Env, caller: Caller) -> Req:
    return Req("/v1/devices", json={"kind": "participant_device", "label": "Probe device",
                                    "person_id": env.people["other_case_participant"].person_id})


async def _revoke_device(env: Env, caller: Caller) -> Req:
    device = await env.admin.call("POST", "/v1/devices", json_body={
        "kind": "participant_device", "label": "Disposable device",
        "person_id": env.people["other_case_participant"].person_id})
    return Req(f"/v1/devices/{device['id']}/revoke")


async def _after_revoke_device(env: Env, caller: Caller, req: Req, allowed: bool) -> str | None:
    device_id = req.path.split("/")[3]
    status = next(d["status"] for d in await env.admin.call("GET", "/v1/devices") if d["id"] == device_id)
    if (status == "revoked") != allowed:
        return f"{caller.name}: device status is {status!r} after the call"
    return None


async def _new_case(env: Env, caller: Caller) -> Req:
    return Req("/v1/cases", json={"referral_source": "community", "institution_id": env.world.institution_id})


async def _add_participant(env: Env, caller: Caller) -> Req:
    return Req(f"/v1/cases/{env.cases['scratch']}/participants", json={"person_id": await _disposable_person(env)})


async def _assign_mediator(env: Env, caller: Caller) -> Req:
    return Req(f"/v1/cases/{env.cases['scratch']}/mediators",
               json={"person_id": await _disposable_person(env, "mediator")})


async def _after_membership(env: Env, caller: Caller, req: Req, allowed: bool) -> str | None:
    case = await env.admin.call("GET", f"/v1/cases/{env.cases['scratch']}")
    members = {p["id"] for p in case["participants"]} | {m["id"] for m in case["mediators"]}
    if (req.json["person_id"] in members) != allowed:
        return f"{caller.name}: membership changed={not allowed}, expected {allowed}"
    return None


# -- retention: each probe works on the scratch case or a disposable participant, and undoes itself


async def _legal_hold(env: Env, caller: Caller) -> Req:
    return Req(f"/v1/cases/{env.cases['scratch']}/legal-hold", json={"hold": True})


async def _after_legal_hold(env: Env, caller: Caller, req: Req, allowed: bool) -> str | None:
    case = await env.admin.call("GET", f"/v1/cases/{env.cases['scratch']}")
    await env.admin.call("POST", req.path, json_body={"hold": False})
    if (case["legal_hold_since"] is not None) != allowed:
        return f"{caller.name}: the legal hold is {'set' if case['legal_hold_since'] else 'not set'} after the call"
    return None


async def _override(env: Env, caller: Caller) -> Req:
    return Req(f"/v1/cases/{env.cases['scratch']}/retention", json={"rule": "review_wait", "days": 5})


async def _after_override(env: Env, caller: Caller, req: Req, allowed: bool) -> str | None:
    case = await env.admin.call("GET", f"/v1/cases/{env.cases['scratch']}")
    await env.admin.call("POST", req.path, json_body={"rule": "review_wait", "days": None})
    if ("review_wait" in case["retention_overrides"]) != allowed:
        return f"{caller.name}: overrides are {case['retention_overrides']} after the call"
    return None


async def _erasure(env: Env, caller: Caller) -> Req:
    """A disposable participant of the scratch case who withdrew: erasure may follow."""
    person = await _disposable_person(env)
    await env.admin.call("POST", f"/v1/cases/{env.cases['scratch']}/participants", json_body={"person_id": person})
    await env.admin.call("POST", f"/v1/cases/{env.cases['scratch']}/participants/{person}/consent",
                         json_body={"consent": "withdrawn"})
    return Req(f"/v1/cases/{env.cases['scratch']}/participants/{person}/erasure")


async def _after_erasure(env: Env, caller: Caller, req: Req, allowed: bool) -> str | None:
    person = req.path.split("/")[5]
    conn = sqlite3.connect(env.data_dir / "relay.sqlite3")
    try:
        recorded = conn.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'case.erasure' AND subject = ?",
                                (person,)).fetchone()[0]
    finally:
        conn.close()
    if bool(recorded) != allowed:
        return f"{caller.name}: an erasure was {'recorded' if recorded else 'not recorded'}"
    return None


# -- conditions and approvals: each probe works on disposable people, so no case-A rule changes


def _condition_body(restricted: str, protected: str) -> dict[str, Any]:
    return {"kind": "court_order", "reference": "Probe order 1", "restricted_id": restricted,
            "protected_people": [protected], "direction": "both", "effective_from": "2026-01-01T00:00:00Z",
            "program_exception": False}


async def _disposable_condition(env: Env) -> str:
    body = _condition_body(await _disposable_person(env), await _disposable_person(env))
    return str((await env.admin.call("POST", "/v1/conditions", json_body=body))["id"])


async def _new_condition(env: Env, caller: Caller) -> Req:
    return Req("/v1/conditions", json=_condition_body(await _disposable_person(env), await _disposable_person(env)))


async def _show_condition(env: Env, caller: Caller) -> Req:
    return Req(f"/v1/conditions/{await _disposable_condition(env)}")


async def _amend_condition(env: Env, caller: Caller) -> Req:
    return Req(f"/v1/conditions/{await _disposable_condition(env)}/amend", json={"reference": "Probe order 1, amended"})


async def _after_condition_change(env: Env, caller: Caller, req: Req, allowed: bool) -> str | None:
    condition = await env.admin.call("GET", "/v1/conditions/" + req.path.split("/")[3])
    if (condition["version"] > 1) != allowed:
        return f"{caller.name}: condition at version {condition['version']}, expected a change={allowed}"
    return None


async def _lift_condition(env: Env, caller: Caller) -> Req:
    return Req(f"/v1/conditions/{await _disposable_condition(env)}/lift")


async def _new_approval(env: Env, caller: Caller) -> Req:
    return Req("/v1/approvals", json={"case_id": env.cases["scratch"], "condition_id": await _disposable_condition(env),
                                      "directions": ["from_restricted"], "kinds": ["letter"],
                                      "valid_until": "2099-01-01T00:00:00Z"})


async def _revoke_approval(env: Env, caller: Caller) -> Req:
    approval = await env.admin.call("POST", "/v1/approvals", json_body=(await _new_approval(env, caller)).json)
    return Req(f"/v1/approvals/{approval['id']}/revoke")


async def _after_revoke_approval(env: Env, caller: Caller, req: Req, allowed: bool) -> str | None:
    approval_id = req.path.split("/")[3]
    approval = next(a for a in await env.admin.call("GET", "/v1/approvals") if a["id"] == approval_id)
    if (approval["revoked_at"] is not None) != allowed:
        return f"{caller.name}: approval revoked={approval['revoked_at'] is not None}, expected {allowed}"
    return None


# -- limits and the mediator desk: kiosk codes, key-bundle unlock, pause, timeline


def _kiosk_identify(whose: str) -> Builder:
    async def build(env: Env, caller: Caller) -> Req:
        return Req("/v1/kiosk/identify", json={"code": env.kiosk_codes[whose]})

    return build


async def _kiosk_code(env: Env, caller: Caller) -> Req:
    person = await env.admin.enroll(public=Identity.generate().public, label="Disposable kiosk user",
                                    role="participant", relation="victim", institution_id=env.world.institution_id)
    return Req(f"/v1/people/{person['id']}/kiosk-code")


async def _unlock_bundle(env: Env, caller: Caller) -> Req:
    return Req(f"/v1/people/{env.world.offender.person_id}/key-bundle/unlock")


def _pause(case: str) -> Builder:
    async def build(env: Env, caller: Caller) -> Req:
        return Req(f"/v1/cases/{env.cases[case]}/pause", json={"paused": True, "reason": "safety-assessment"})

    return build


async def _after_pause(env: Env, caller: Caller, req: Req, allowed: bool) -> str | None:
    case = await env.admin.call("GET", req.path.removesuffix("/pause"))
    await env.admin.call("POST", req.path, json_body={"paused": False, "reason": "assessment-complete"})
    if (case["status"] == "paused") != allowed:
        return f"{caller.name}: the case is {case['status']!r} after the call"
    return None


# -- resumable uploads: each probe aims at a fresh upload of the victim's, on the victim's device

TUS = {"Tus-Resumable": "1.0.0"}


_VICTIM_UPLOADS: list[str] = []


async def _victims_upload(env: Env) -> str:
    """A fresh upload of the victim's; the previous ones are cancelled (a person may hold only a
    few unfinished uploads at once)."""
    victim = env.clients["victim"]
    assert victim._http is not None
    while _VICTIM_UPLOADS:
        async with victim._http.delete(victim.url + _VICTIM_UPLOADS.pop(), headers={**victim._headers(), **TUS}):
            pass
    async with victim._http.post(victim.url + "/v1/uploads",
                                 headers={**victim._headers(), **TUS, "Upload-Length": "10"}) as response:
        assert response.status == 201, await response.text()
        _VICTIM_UPLOADS.append(response.headers["Location"])
        return response.headers["Location"]


async def _new_upload(env: Env, caller: Caller) -> Req:
    return Req("/v1/uploads", headers={**TUS, "Upload-Length": "10"})


async def _head_upload(env: Env, caller: Caller) -> Req:
    return Req(await _victims_upload(env), headers=TUS)


async def _patch_upload(env: Env, caller: Caller) -> Req:
    return Req(await _victims_upload(env), data=b"0123456789", headers={
        **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})


async def _after_patch_upload(env: Env, caller: Caller, req: Req, allowed: bool) -> str | None:
    victim = env.clients["victim"]
    assert victim._http is not None
    async with victim._http.head(victim.url + req.path, headers={**victim._headers(), **TUS}) as response:
        offset = response.headers.get("Upload-Offset")
    if offset != ("10" if allowed else "0"):
        return f"{caller.name}: the upload's offset is {offset} after the call"
    return None


async def _after_delete_upload(env: Env, caller: Caller, req: Req, allowed: bool) -> str | None:
    victim = env.clients["victim"]
    assert victim._http is not None
    async with victim._http.head(victim.url + req.path, headers={**victim._headers(), **TUS}) as response:
        if (response.status == 404) != allowed:
            return f"{caller.name}: the upload {'is gone' if response.status == 404 else 'remains'} after the call"
    return None


async def _consent(env: Env, caller: Caller) -> Req:  # "given" again: a no-op when it is allowed
    return Req(f"/v1/cases/{env.world.case_id}/participants/{env.world.victim.person_id}/consent",
               json={"consent": "given"})


async def _status(env: Env, caller: Caller) -> Req:  # "open" again: a no-op when it is allowed
    return Req(f"/v1/cases/{env.world.case_id}/status", json={"status": "open"})


async def _submit(env: Env, caller: Caller) -> Req:
    """A well-formed item for case A, signed by the caller: participants write to the mediators,
    mediators write to the victim with their signed release."""
    w = env.world
    who = _who(env, caller)
    is_mediator = who.person_id in {w.mediator.person_id, env.people["unassigned_mediator"].person_id}
    recipient = w.victim.person_id if is_mediator else "mediators"
    readers = {w.mediator.person_id: w.mediator, who.person_id: who}
    if is_mediator:
        readers[w.victim.person_id] = w.victim
    key = envelope.new_content_key()
    blob = envelope.encrypt_bytes(key, b"a probe of who may submit")
    manifest = envelope.item_manifest(
        item_id=ids.new("item"), case_id=w.case_id, kind="letter", sender=who.person_id, recipient=recipient,
        created_at=_now(), content_type="text/plain", size=len(blob), hash=envelope.blob_hash(blob),
        keys={pid: envelope.seal_key(key, p.identity.public.box_pk) for pid, p in sorted(readers.items())})
    meta: dict[str, Any] = {"manifest": manifest,
                            "signature": envelope.sign(Domain.MANIFEST, manifest, who.identity.signing_key)}
    if is_mediator:
        decision = envelope.decision_manifest(
            item_id=str(manifest["item_id"]), case_id=w.case_id, manifest_hash=envelope.digest(manifest),
            sender={"id": who.person_id, "fingerprint": who.identity.public.fingerprint()},
            decision="release", mediator=who.person_id, decided_at=_now(), recipient=recipient,
            delivery={"content_type": "text/plain", "size": len(blob), "hash": manifest["hash"],
                      "keys": manifest["keys"]}, reason=None)
        meta |= {"decision": decision,
                 "decision_signature": envelope.sign(Domain.DECISION, decision, who.identity.signing_key)}
    return Req("/v1/items", form=lambda: _multipart(meta, blob))


async def _decide(env: Env, caller: Caller) -> Req:
    """A fresh pending letter of case A, and a withhold signed by the caller."""
    w = env.world
    victim = env.clients["victim"]
    sent = await victim.send(case_id=w.case_id, recipient=w.offender.person_id, src=_bytes(b"to be decided"))
    manifest = (await victim.call("GET", f"/v1/items/{sent['id']}"))["manifest"]
    who = _who(env, caller, "mediator")
    doc = envelope.decision_manifest(
        item_id=sent["id"], case_id=w.case_id, manifest_hash=envelope.digest(manifest), decision="withhold",
        sender={"id": w.victim.person_id, "fingerprint": w.victim.identity.public.fingerprint()},
        mediator=who.person_id, decided_at=_now(), recipient=w.offender.person_id, delivery=None,
        reason="not-ready")
    meta = {"decision": doc, "signature": envelope.sign(Domain.DECISION, doc, who.identity.signing_key)}
    return Req(f"/v1/items/{sent['id']}/decision", form=lambda: _multipart(meta, None))


async def _after_decide(env: Env, caller: Caller, req: Req, allowed: bool) -> str | None:
    item_id = req.path.split("/")[3]
    state = (await env.clients["victim"].call("GET", f"/v1/items/{item_id}"))["state"]
    if state != ("withheld" if allowed else "pending_review"):
        return f"{caller.name}: the item is {state!r} after the call"
    return None


def _receipt(item: str) -> Builder:
    async def build(env: Env, caller: Caller) -> Req:
        who = _who(env, caller)
        decision = env.decisions.get(item)
        receipt = envelope.receipt(item_id=env.items[item],
                                   decision_hash=envelope.digest(decision) if decision else "0" * 64,
                                   recipient=who.person_id, opened_at=_now())
        return Req(f"/v1/items/{env.items[item]}/receipt", json={
            "receipt": receipt, "signature": envelope.sign(Domain.RECEIPT, receipt, who.identity.signing_key)})

    return build


def _path(route: str, **refs: str) -> Builder:
    """Fill the route's placeholders from the world: item_id='pending', case_id='a', person_id='victim'."""
    table = {"item_id": "items", "case_id": "cases", "person_id": "people"}

    async def build(env: Env, caller: Caller) -> Req:
        values = {}
        for name, ref in refs.items():
            value = getattr(env, table[name])[ref]
            values[name] = value.person_id if isinstance(value, Someone) else value
        return Req(route.format(**values))

    return build


# -- the matrix ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    method: str
    route: str  # exactly as in relay.routes.ROUTES
    target: str  # what it is aimed at, for the test id
    allowed: frozenset[str]
    build: Builder
    refusals: frozenset[int] | None = None  # statuses a refused caller may get (default: see _refusals)
    after: After | None = None  # checks the call changed nothing unless allowed

    @property
    def id(self) -> str:
        return f"{self.method} {self.route} [{self.target}]" if self.target else f"{self.method} {self.route}"


def probe(method: str, route: str, allowed: frozenset[str], *, build: Builder | None = None, target: str = "",
          refusals: frozenset[int] | None = None, after: After | None = None, **refs: str) -> Probe:
    target = target or ",".join(refs.values())
    return Probe(method, route, target, frozenset(allowed), build or _path(route, **refs), refusals, after)


ITEM_READERS = {  # who may read the original manifest and ciphertext: the sender and the case's mediators
    "pending": {"victim", "mediator"},
    "released": {"offender_on_terminal", "mediator"},
    "returned": {"victim", "mediator"},
    "to_mediators": {"victim", "mediator"},
    "mediator_message": {"mediator"},
    "case_b_to_mediators": {"other_case_participant", "unassigned_mediator"},
    "video": {"victim", "mediator"},
}
DELIVERY_READERS = {  # who may fetch the released rendition: the recipient, once released
    "pending": set(),
    "released": {"victim"},
    "returned": set(),
    "to_mediators": set(),
    "mediator_message": {"offender_on_terminal"},
}

PROBES: list[Probe] = [
    probe("GET", "/healthz", ALL),
    probe("GET", "/readyz", ALL),
    probe("GET", "/openapi.json", ALL),
    probe("GET", "/metrics", ALL),  # no device: a direct loopback peer or the metrics token (tests/test_metrics.py)
    probe("POST", "/v1/bootstrap", NOBODY, build=_bootstrap, target="used first-start code",
          refusals=frozenset({403})),
    # sign-in
    probe("POST", "/v1/auth/challenge", SIGN_IN, build=_challenge_self, target="self"),
    probe("POST", "/v1/auth/challenge", frozenset({"offender_on_terminal"}), build=_challenge_offender,
          target="offender"),
    probe("POST", "/v1/auth/session", SIGN_IN, build=_open_session, target="own challenge"),
    probe("DELETE", "/v1/auth/session", LIVE, build=_close_session, after=_after_close_session),
    probe("GET", "/v1/me", LIVE),
    probe("GET", "/v1/directory/{person_id}", CASE_A, person_id="victim"),
    probe("GET", "/v1/directory/{person_id}",
          frozenset({"coordinator", "unassigned_mediator", "other_institution_participant"}),
          person_id="other_institution_participant"),
    probe("GET", "/v1/people/{person_id}/key-bundle", frozenset({"offender_on_terminal"}), person_id="offender"),
    probe("GET", "/v1/people/{person_id}/key-bundle", frozenset({"other_institution_participant"}),
          person_id="other_institution_participant"),
    probe("POST", "/v1/kiosk/identify", frozenset({"offender_on_terminal"}), build=_kiosk_identify("offender"),
          target="offender's code"),
    probe("POST", "/v1/kiosk/identify", frozenset({"other_institution_participant"}),
          build=_kiosk_identify("other_institution_participant"), target="institution B participant's code"),
    # the coordinator
    probe("POST", "/v1/institutions", COORDINATOR, build=_new_institution),
    probe("GET", "/v1/institutions", COORDINATOR),
    probe("POST", "/v1/people", COORDINATOR, build=_new_person, after=_after_new_person),
    probe("GET", "/v1/people", COORDINATOR),
    probe("POST", "/v1/people/{person_id}/revoke", COORDINATOR, build=_revoke_person, target="disposable",
          after=_after_revoke_person),
    probe("POST", "/v1/people/{person_id}/kiosk-code", COORDINATOR, build=_kiosk_code, target="disposable"),
    probe("POST", "/v1/people/{person_id}/key-bundle/unlock", COORDINATOR, build=_unlock_bundle, target="offender"),
    probe("POST", "/v1/devices", COORDINATOR, build=_new_device),
    probe("GET", "/v1/devices", COORDINATOR),
    probe("POST", "/v1/devices/{device_id}/revoke", COORDINATOR, build=_revoke_device, target="disposable",
          after=_after_revoke_device),
    probe("POST", "/v1/cases", COORDINATOR, build=_new_case),
    probe("GET", "/v1/cases", LIVE),
    probe("GET", "/v1/cases/{case_id}", CASE_A, case_id="a"),
    probe("GET", "/v1/cases/{case_id}",
          frozenset({"coordinator", "unassigned_mediator", "other_institution_participant"}), case_id="c"),
    probe("GET", "/v1/cases/{case_id}/items", frozenset({"coordinator", "mediator"}), case_id="a"),
    probe("GET", "/v1/cases/{case_id}/items", frozenset({"coordinator", "unassigned_mediator"}), case_id="b"),
    probe("GET", "/v1/cases/{case_id}/timeline", frozenset({"coordinator", "mediator"}), case_id="a"),
    probe("GET", "/v1/cases/{case_id}/timeline", frozenset({"coordinator", "unassigned_mediator"}), case_id="c"),
    probe("POST", "/v1/cases/{case_id}/pause", frozenset({"coordinator", "mediator"}), build=_pause("a"), target="a",
          after=_after_pause),
    probe("POST", "/v1/cases/{case_id}/pause", frozenset({"coordinator", "unassigned_mediator"}), build=_pause("b"),
          target="b", after=_after_pause),
    probe("POST", "/v1/cases/{case_id}/participants", COORDINATOR, build=_add_participant, target="scratch",
          after=_after_membership),
    probe("POST", "/v1/cases/{case_id}/mediators", COORDINATOR, build=_assign_mediator, target="scratch",
          after=_after_membership),
    probe("POST", "/v1/cases/{case_id}/participants/{person_id}/consent", COORDINATOR, build=_consent,
          target="a,victim"),
    probe("POST", "/v1/cases/{case_id}/status", COORDINATOR, build=_status, target="a"),
    probe("POST", "/v1/cases/{case_id}/legal-hold", COORDINATOR, build=_legal_hold, target="scratch",
          after=_after_legal_hold),
    probe("POST", "/v1/cases/{case_id}/retention", COORDINATOR, build=_override, target="scratch",
          after=_after_override),
    probe("POST", "/v1/cases/{case_id}/participants/{person_id}/erasure", COORDINATOR, build=_erasure,
          target="scratch, withdrawn", after=_after_erasure),
    probe("GET", "/v1/retention", COORDINATOR),
    probe("GET", "/v1/retention/due", COORDINATOR),
    probe("POST", "/v1/conditions", COORDINATOR, build=_new_condition),
    probe("GET", "/v1/conditions", COORDINATOR),
    probe("GET", "/v1/conditions/{condition_id}", COORDINATOR, build=_show_condition, target="disposable"),
    probe("POST", "/v1/conditions/{condition_id}/amend", COORDINATOR, build=_amend_condition, target="disposable",
          after=_after_condition_change),
    probe("POST", "/v1/conditions/{condition_id}/lift", COORDINATOR, build=_lift_condition, target="disposable",
          after=_after_condition_change),
    probe("POST", "/v1/approvals", COORDINATOR, build=_new_approval),
    probe("GET", "/v1/approvals", COORDINATOR),
    probe("POST", "/v1/approvals/{approval_id}/revoke", COORDINATOR, build=_revoke_approval, target="disposable",
          after=_after_revoke_approval),
    # limits and resumable uploads
    probe("GET", "/v1/limits", ALL),
    probe("OPTIONS", "/v1/uploads", ALL),
    probe("POST", "/v1/uploads", PARTICIPANTS | MEDIATORS, build=_new_upload),
    probe("HEAD", "/v1/uploads/{upload_id}", frozenset({"victim"}), build=_head_upload, target="victim's"),
    probe("PATCH", "/v1/uploads/{upload_id}", frozenset({"victim"}), build=_patch_upload, target="victim's",
          after=_after_patch_upload),
    probe("DELETE", "/v1/uploads/{upload_id}", frozenset({"victim"}), build=_head_upload, target="victim's",
          after=_after_delete_upload),
    # items
    probe("POST", "/v1/items", frozenset({"mediator", "victim", "offender_on_terminal"}), build=_submit,
          target="case a"),
    probe("GET", "/v1/items/sent", PARTICIPANTS | MEDIATORS),
    *(probe("GET", route, frozenset(readers), item_id=item)
      for item, readers in ITEM_READERS.items()
      for route in ("/v1/items/{item_id}", "/v1/items/{item_id}/content")),
    *(probe("GET", route, allowed, item_id=item)
      for item, allowed in (("returned", frozenset({"victim"})), ("pending", NOBODY), ("released", NOBODY))
      for route in ("/v1/items/{item_id}/note", "/v1/items/{item_id}/note/content")),
    probe("GET", "/v1/items/{item_id}/poster", frozenset({"victim", "mediator"}), item_id="video"),
    probe("GET", "/v1/items/{item_id}/poster", NOBODY, item_id="pending"),
    probe("GET", "/v1/inbox", PARTICIPANTS),
    *(probe("GET", route, frozenset(readers), item_id=item)
      for item, readers in DELIVERY_READERS.items()
      for route in ("/v1/items/{item_id}/delivery", "/v1/items/{item_id}/delivery/content")),
    *(probe("POST", "/v1/items/{item_id}/receipt", frozenset(DELIVERY_READERS[item]), build=_receipt(item),
            target=item)
      for item in ("released", "mediator_message", "pending")),
    probe("GET", "/v1/review/queue", MEDIATORS),
    probe("GET", "/v1/review/inbox", MEDIATORS),
    probe("POST", "/v1/items/{item_id}/decision", frozenset({"mediator"}), build=_decide,
          target="fresh pending letter", after=_after_decide),
    probe("POST", "/v1/items/{item_id}/read", frozenset({"mediator"}), item_id="to_mediators"),
    probe("POST", "/v1/items/{item_id}/read", NOBODY, item_id="pending"),
    probe("POST", "/v1/items/{item_id}/read", frozenset({"unassigned_mediator"}), item_id="case_b_to_mediators"),
]

_TYPES_BY_STATUS = {
    401: {"unauthenticated", "session-required", "login-refused"},
    403: {"forbidden", "bootstrap-refused"},
    404: {"not-found"},
}
_PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance", "request_id"}


# Which signed-in callers each route's guard lets through to the object-level checks. A refused
# caller the guard stops gets 403 (wrong kind of caller); one it lets through gets 404 (not yours:
# indistinguishable from "does not exist", so a 403 there would tell that the object exists).
GUARD_PASSES = {
    "public": ALL, "sign-in": SIGN_IN | {"revoked_person"}, "any": LIVE, "coordinator": COORDINATOR,
    "staff": COORDINATOR | MEDIATORS, "sender": PARTICIPANTS | MEDIATORS, "participant": PARTICIPANTS,
    "mediator": MEDIATORS, "terminal": frozenset({"offender_on_terminal", "other_institution_participant"}),
}
GUARD_OF = {
    "/healthz": "public", "/readyz": "public", "/metrics": "public", "/openapi.json": "public", "/v1/bootstrap": "public",
    "/v1/auth/challenge": "sign-in", "POST /v1/auth/session": "sign-in", "DELETE /v1/auth/session": "any",
    "/v1/me": "any", "/v1/directory/{person_id}": "any", "/v1/people/{person_id}/key-bundle": "terminal",
    "/v1/kiosk/identify": "terminal", "/v1/people/{person_id}/kiosk-code": "coordinator",
    "/v1/people/{person_id}/key-bundle/unlock": "coordinator",
    "/v1/cases/{case_id}/timeline": "staff", "/v1/cases/{case_id}/pause": "staff",
    "/v1/institutions": "coordinator", "/v1/people": "coordinator", "/v1/people/{person_id}/revoke": "coordinator",
    "/v1/devices": "coordinator", "/v1/devices/{device_id}/revoke": "coordinator",
    "POST /v1/cases": "coordinator", "GET /v1/cases": "any", "/v1/cases/{case_id}": "any",
    "/v1/cases/{case_id}/items": "staff", "/v1/cases/{case_id}/participants": "coordinator",
    "/v1/cases/{case_id}/mediators": "coordinator",
    "/v1/cases/{case_id}/participants/{person_id}/consent": "coordinator",
    "/v1/cases/{case_id}/status": "coordinator", "/v1/cases/{case_id}/legal-hold": "coordinator",
    "/v1/cases/{case_id}/retention": "coordinator",
    "/v1/cases/{case_id}/participants/{person_id}/erasure": "coordinator",
    "/v1/retention": "coordinator", "/v1/retention/due": "coordinator",
    "/v1/conditions": "coordinator", "/v1/conditions/{condition_id}": "coordinator",
    "/v1/conditions/{condition_id}/amend": "coordinator", "/v1/conditions/{condition_id}/lift": "coordinator",
    "/v1/approvals": "coordinator", "/v1/approvals/{approval_id}/revoke": "coordinator",
    "/v1/limits": "public", "OPTIONS /v1/uploads": "public", "POST /v1/uploads": "sender",
    "/v1/uploads/{upload_id}": "sender",
    "/v1/items": "sender", "/v1/items/sent": "sender", "/v1/items/{item_id}": "sender",
    "/v1/items/{item_id}/content": "sender", "/v1/items/{item_id}/poster": "sender", "/v1/items/{item_id}/note": "participant",
    "/v1/items/{item_id}/note/content": "participant", "/v1/inbox": "participant",
    "/v1/items/{item_id}/delivery": "participant", "/v1/items/{item_id}/delivery/content": "participant",
    "/v1/items/{item_id}/receipt": "participant", "/v1/review/queue": "mediator", "/v1/review/inbox": "mediator",
    "/v1/items/{item_id}/decision": "mediator", "/v1/items/{item_id}/read": "mediator",
}


def _guard_of(method: str, route: str) -> str:
    return GUARD_OF.get(f"{method} {route}") or GUARD_OF[route]


def _refusals(probe: Probe, caller: str) -> frozenset[int]:
    if probe.refusals is not None:
        return probe.refusals
    if caller in BAD_DEVICE:
        return frozenset({401})
    guard = _guard_of(probe.method, probe.route)
    if guard == "sign-in":
        return frozenset({401})  # login-refused
    if caller in BAD_SESSION:
        return frozenset({401, 403})  # 403 where the device is of the wrong kind for the route
    return frozenset({404}) if caller in GUARD_PASSES[guard] else frozenset({403})


def _judge_refusal(env: Env, probe: Probe, caller: str, req: Req, answer: Answer) -> list[str]:
    where = f"{caller}: {answer.status}"
    wrong = []
    if answer.status not in _refusals(probe, caller):
        wrong.append(f"{where}, expected one of {sorted(_refusals(probe, caller))}: {answer.text[:300]}")
    if not answer.content_type.startswith("application/problem+json"):
        return [*wrong, f"{where}: refusal is {answer.content_type!r}, not a problem document: {answer.text[:300]}"]
    if probe.method == "HEAD":  # a HEAD answer has the problem's headers but, by definition, no body
        return wrong
    body = answer.json()
    slug = str(body.get("type", "")).removeprefix(PROBLEM)
    if not str(body.get("type", "")).startswith(PROBLEM) or slug not in _TYPES_BY_STATUS.get(answer.status, set()):
        wrong.append(f"{where}: problem type {body.get('type')!r} does not fit the status")
    if caller in BAD_DEVICE and probe.refusals is None and slug != "unauthenticated":
        wrong.append(f"{where}: a bad device token gets {slug!r}, expected 'unauthenticated'")
    if body.get("status") != answer.status or body.get("title") != i18n.text(slug, "en"):
        wrong.append(f"{where}: problem status/title do not match: {body}")
    if body.get("instance", req.path) != req.path.split("?")[0]:
        wrong.append(f"{where}: problem instance {body.get('instance')!r} is not the request path")
    if not answer.request_id or body.get("request_id") != answer.request_id:
        wrong.append(f"{where}: problem request_id {body.get('request_id')!r} is not X-Request-Id {answer.request_id!r}")
    if set(body) - _PROBLEM_FIELDS:
        wrong.append(f"{where}: the refusal carries extra fields {sorted(set(body) - _PROBLEM_FIELDS)}")
    leaked = sorted(s for s in env.secrets if s and s not in req.path and s in answer.text)
    if leaked:
        wrong.append(f"{where}: the refusal leaks {leaked}")
    return wrong


def test_matrix_covers_every_route() -> None:
    routes = {(method, path) for method, path, _ in ROUTES}
    probed = {(p.method, p.route) for p in PROBES}
    assert routes - probed == set(), "routes with no row in the authorization matrix"
    assert probed - routes == set(), "rows for routes that do not exist"
    for method, path in routes:
        assert _guard_of(method, path) in GUARD_PASSES, f"{method} {path}: say who its guard lets through"
    for p in PROBES:
        assert p.allowed <= ALL, f"{p.id}: unknown callers {sorted(p.allowed - ALL)}"
    assert len({p.id for p in PROBES}) == len(PROBES), "two rows with the same id"


@MODULE
@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
async def test_route_authorization(env: Env, probe: Probe) -> None:
    failures: list[str] = []
    for name in CALLERS:
        caller = env.callers[name]
        req = await probe.build(env, caller)
        answer = await env.send(probe.method, req, caller)
        allowed = name in probe.allowed
        if answer.status >= 500:
            failures.append(f"{name}: server error {answer.status}: {answer.text[:300]}")
        elif allowed and not 200 <= answer.status < 300:
            failures.append(f"{name}: should be allowed, got {answer.status}: {answer.text[:300]}")
        elif not allowed and 200 <= answer.status < 300:
            failures.append(f"{name}: should be refused, got {answer.status}: {answer.text[:300]}")
        elif not allowed:
            failures += _judge_refusal(env, probe, name, req, answer)
        if probe.after is not None:
            problem = await probe.after(env, caller, req, allowed)
            if problem:
                failures.append(problem)
    assert not failures, f"{probe.id}:\n  " + "\n  ".join(failures)


# -- focused tests -------------------------------------------------------------------------------


async def _get(env: Env, caller: str, path: str) -> Answer:
    c = env.callers[caller]
    return await env.raw("GET", path, device=c.device, session=c.session)


def _case_a_markers(env: Env) -> set[str]:
    """Strings that would show that something of case A reached a caller outside it."""
    w = env.world
    items = {v for k, v in env.items.items() if not k.startswith("case_b")}
    return {w.case_id, *items, w.victim.person_id, w.offender.person_id, w.mediator.person_id,
            w.victim.label, w.offender.label}


@MODULE
async def test_forged_login_is_refused_and_audited(env: Env) -> None:
    victim = env.world.victim
    device = str(victim.device_token)
    before = len(env.audit("login.failed"))
    counted_before = env.security_count("login.failed", device.split(".")[0])
    challenge = (await env.raw("POST", "/v1/auth/challenge", device=device,
                               json_body={"person_id": victim.person_id})).json()
    statement = envelope.login_statement(challenge=challenge["challenge"], device_id=device.split(".")[0],
                                         person_id=victim.person_id)
    # The challenge signed with someone else's (enrolled, valid) key.
    forged = envelope.sign(Domain.LOGIN, statement, env.world.mediator.identity.signing_key)
    answer = await env.raw("POST", "/v1/auth/session", device=device,
                           json_body={"challenge_id": challenge["challenge_id"], "signature": forged})
    assert answer.status == 401 and answer.json()["type"] == PROBLEM + "login-refused"
    assert "session_token" not in answer.text

    # The challenge is spent: the right signature cannot reuse it afterwards.
    right = envelope.sign(Domain.LOGIN, statement, victim.identity.signing_key)
    again = await env.raw("POST", "/v1/auth/session", device=device,
                          json_body={"challenge_id": challenge["challenge_id"], "signature": right})
    assert again.status == 401 and again.json()["type"] == PROBLEM + "login-refused"

    # Both refusals are recorded: the first of its kind in the window as an entry of its own, a
    # repeat counted (storage.security), so that refusals cannot grow the chain at will.
    assert env.security_count("login.failed", device.split(".")[0]) == counted_before + 2
    failed = env.audit("login.failed")
    assert len(failed) >= before + 1 or before > 0
    assert failed and all(f["actor_device"] for f in failed)
    mine = [f for f in failed if f["actor_device"] == device.split(".")[0]]
    assert mine and mine[-1]["actor_person"] in (victim.person_id, None)
    assert forged not in json.dumps(failed) and challenge["challenge"] not in json.dumps(failed)


@MODULE
async def test_offender_cannot_sign_in_at_another_institutions_terminal(env: Env) -> None:
    offender, terminal_b = env.world.offender, env.terminal_b
    refused_before = env.security_count("login.refused", terminal_b.split(".")[0])

    bundle = await env.raw("GET", f"/v1/people/{offender.person_id}/key-bundle", device=terminal_b)
    assert bundle.status == 404 and "key_bundle" not in bundle.text

    challenge = await env.raw("POST", "/v1/auth/challenge", device=terminal_b,
                              json_body={"person_id": offender.person_id})
    assert challenge.status == 401 and challenge.json()["type"] == PROBLEM + "login-refused"
    assert env.security_count("login.refused", terminal_b.split(".")[0]) == refused_before + 1
    refused = [r for r in env.audit("login.refused") if r["actor_device"] == terminal_b.split(".")[0]]
    assert refused and refused[-1]["code"] == "device-may-not-serve"

    # A challenge won at the right terminal cannot be carried over to terminal B, however it is signed.
    at_a = (await env.raw("POST", "/v1/auth/challenge", device=env.world.terminal_token,
                          json_body={"person_id": offender.person_id})).json()
    for device_named in (env.world.terminal_token, terminal_b):
        statement = envelope.login_statement(challenge=at_a["challenge"], device_id=device_named.split(".")[0],
                                             person_id=offender.person_id)
        answer = await env.raw("POST", "/v1/auth/session", device=terminal_b, json_body={
            "challenge_id": at_a["challenge_id"],
            "signature": envelope.sign(Domain.LOGIN, statement, offender.identity.signing_key)})
        assert answer.status == 401 and answer.json()["type"] == PROBLEM + "login-refused"


@MODULE
@pytest.mark.parametrize("outsider", ["other_case_participant", "other_institution_participant"])
async def test_participant_of_another_case_sees_nothing_of_case_a(env: Env, outsider: str) -> None:
    own_case = env.cases["b" if outsider == "other_case_participant" else "c"]
    cases = (await _get(env, outsider, "/v1/cases")).json()
    assert [c["id"] for c in cases] == [own_case]
    me = (await _get(env, outsider, "/v1/me")).json()
    assert [c["id"] for c in me["cases"]] == [own_case]
    markers = _case_a_markers(env)
    for path in ("/v1/cases", "/v1/me", "/v1/inbox", "/v1/items/sent", f"/v1/cases/{own_case}"):
        answer = await _get(env, outsider, path)
        assert answer.status == 200, (path, answer.text)
        assert not [m for m in markers if m in answer.text], (path, answer.text)
    for name, item_id in env.items.items():
        if name.startswith("case_b"):
            continue
        for suffix in ("", "/content", "/note", "/note/content", "/delivery", "/delivery/content"):
            answer = await _get(env, outsider, f"/v1/items/{item_id}{suffix}")
            assert answer.status == 404, (name, suffix, answer.status, answer.text)
    for person in ("victim", "offender", "mediator"):
        assert (await _get(env, outsider, f"/v1/directory/{env.people[person].person_id}")).status == 404


@MODULE
@pytest.mark.parametrize("outsider", ["other_case_participant", "unassigned_mediator", "other_institution_participant"])
async def test_an_invisible_item_looks_exactly_like_a_missing_one(env: Env, outsider: str) -> None:
    """404 for "not yours" and for "does not exist" must not be told apart (errors.NotFound)."""
    missing = ids.new("item")
    for suffix in ("", "/content", "/note", "/delivery", "/delivery/content"):
        real = await _get(env, outsider, f"/v1/items/{env.items['pending']}{suffix}")
        fake = await _get(env, outsider, f"/v1/items/{missing}{suffix}")
        if real.status == 403:  # refused by device kind before any lookup, for both alike
            assert fake.status == 403
            continue
        assert (real.status, real.content_type) == (fake.status, fake.content_type) == (
            404, "application/problem+json; charset=utf-8"), suffix
        # Byte for byte but for the request's own id (each request has one: the header's).
        assert real.request_id and fake.request_id and real.request_id != fake.request_id
        assert (real.text.replace(env.items["pending"], missing).replace(real.request_id, "ID")
                == fake.text.replace(fake.request_id, "ID")), suffix


@MODULE
async def test_unassigned_mediator_sees_only_their_own_cases(env: Env) -> None:
    markers = {env.world.case_id, *(v for k, v in env.items.items() if not k.startswith("case_b"))}
    cases = (await _get(env, "unassigned_mediator", "/v1/cases")).json()
    assert {c["id"] for c in cases} == {env.cases["b"], env.cases["c"]}
    inbox = await _get(env, "unassigned_mediator", "/v1/review/inbox")
    assert env.items["case_b_to_mediators"] in inbox.text
    for path in ("/v1/cases", "/v1/review/queue", "/v1/review/inbox", "/v1/items/sent", "/v1/me"):
        answer = await _get(env, "unassigned_mediator", path)
        assert answer.status == 200 and not [m for m in markers if m in answer.text], (path, answer.text)
    # And the assigned mediator, conversely, sees nothing of case B.
    for path in ("/v1/review/queue", "/v1/review/inbox", "/v1/cases"):
        answer = await _get(env, "mediator", path)
        assert env.items["case_b_to_mediators"] not in answer.text and env.cases["b"] not in answer.text

    # A properly signed withhold from a mediator of another case changes nothing.
    caller = env.callers["unassigned_mediator"]
    req = await _decide(env, caller)
    answer = await env.send("POST", req, caller)
    assert answer.status == 404 and answer.json()["type"] == PROBLEM + "not-found"
    assert await _after_decide(env, caller, req, allowed=False) is None


@MODULE
async def test_revoked_person_and_revoked_device_are_shut_out(env: Env) -> None:
    revoked = env.callers["revoked_person"]
    me = await env.raw("GET", "/v1/me", device=revoked.device, session=revoked.session)
    assert me.status == 401 and me.json()["type"] == PROBLEM + "session-required"
    assert revoked.person is not None
    challenge = await env.raw("POST", "/v1/auth/challenge", device=revoked.device,
                              json_body={"person_id": revoked.person.person_id})
    assert challenge.status == 401 and challenge.json()["type"] == PROBLEM + "login-refused"

    lost = env.callers["revoked_device"]
    before = env.security_count("device.refused", lost.device_id)
    me = await env.raw("GET", "/v1/me", device=lost.device, session=lost.session)
    assert me.status == 401 and me.json()["type"] == PROBLEM + "unauthenticated"
    assert env.security_count("device.refused", lost.device_id) == before + 1
    assert [r for r in env.audit("device.refused") if r["actor_device"] == lost.device_id]
    # The person behind the lost device is unaffected on their current one.
    assert (await _get(env, "victim", "/v1/me")).status == 200


@MODULE
async def test_idle_session_needs_a_new_sign_in(env: Env) -> None:
    expired = env.callers["expired_session"]
    for path in ("/v1/me", "/v1/inbox", f"/v1/cases/{env.world.case_id}"):
        answer = await env.raw("GET", path, device=expired.device, session=expired.session)
        assert answer.status == 401 and answer.json()["type"] == PROBLEM + "session-required", path
    assert expired.person is not None and expired.device is not None
    fresh = await env.sign_in(expired.person, expired.device)
    assert (await env.raw("GET", "/v1/me", device=expired.device, session=fresh)).status == 200


@MODULE
async def test_a_session_is_bound_to_its_device(env: Env) -> None:
    mediator = env.callers["mediator"]
    # The mediator's live session, presented with the victim's device, and the victim's with the desk.
    victim = env.callers["victim"]
    for device, session in ((victim.device, mediator.session), (mediator.device, victim.session)):
        answer = await env.raw("GET", "/v1/me", device=device, session=session)
        assert answer.status == 401 and answer.json()["type"] == PROBLEM + "session-required"
    assert (await _get(env, "mediator", "/v1/me")).status == 200


@MODULE
async def test_coordinator_sees_metadata_but_no_key_material(env: Env) -> None:
    sealed = {k for m in env.manifests.values() for k in m["keys"].values()}
    listing = await _get(env, "coordinator", f"/v1/cases/{env.world.case_id}/items")
    assert listing.status == 200 and listing.json()
    for entry in listing.json():
        assert not {"manifest", "signature", "keys", "decision_doc", "decision_signature"} & set(entry)
    assert not [k for k in sealed if k in listing.text]
    people = await _get(env, "coordinator", "/v1/people")
    assert people.status == 200 and "key_bundle" not in people.text
    devices = await _get(env, "coordinator", "/v1/devices")
    assert devices.status == 200 and "token_hash" not in devices.text
    assert not [c.device for c in env.callers.values() if c.device and c.device in devices.text]


async def test_terminal_session_ends_at_its_maximum_lifetime(relay: Any, world: World) -> None:
    """Kept busy (never idle), a terminal session still ends at its maximum lifetime."""
    settings = Settings(data_dir=relay.data_dir)
    limit = settings.terminal_session_max_seconds
    step = min(settings.session_idle_seconds - 60, limit // 3)
    offender = await world.session(world.offender, on_terminal=True)
    try:
        elapsed = 0
        while elapsed + step < limit:
            relay.clock.advance(seconds=step)
            elapsed += step
            await offender.call("GET", "/v1/me")
        relay.clock.advance(seconds=limit - elapsed + 1)
        with pytest.raises(ProblemError) as ended:
            await offender.call("GET", "/v1/me")
        assert ended.value.status == 401 and ended.value.type == "session-required"
    finally:
        await offender.close()
