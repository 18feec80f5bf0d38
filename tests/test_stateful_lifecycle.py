"""Stateful proof (issue 13): a hypothesis state machine over an item's whole lifecycle against a
real relay (aiohttp on loopback, SQLite in a temp dir, libsodium through the SDK).

Rules: submit (participant to participant, participant to the mediators, mediator to a
participant), review (release as written or redacted, return with a note, withhold), receipt and
fetch, consent withdrawn and restored, no-contact conditions added and lifted, approvals recorded
and revoked, the case paused and resumed (by its mediator or the coordinator) and closed, legal
hold set and lifted, the clock moved (hours, so conditions and approvals lapse; 40 days, then a
retention purge).

After every step the relay's answers are compared, both ways, with a model kept here and written
from the program's rules (not from ``policies``): every recipient's inbox lists exactly what the
model says is deliverable to them, and each item's recipient can fetch it exactly when the model
says so; and the audit chain verifies (``storage.audit.verify``) with the previous head still in
it. Fetched content must decrypt to what was sent (or to the mediator's redaction).

The model's rules (where the relay had to be read to settle them, that is said):

- Between participants: deliverable iff released by a mediator and not returned, withheld or
  purged; the case open (not paused, not closed); both participants' consent given; and no
  active condition covers the exchange, unless it carries the program's exception or a current
  approval covers its direction and kind (letters here).
- From the mediator: deliverable iff the case is not closed and the recipient's consent is given
  (a paused case still carries the mediator's messages: ``policies/screening.py``; conditions
  never block the case's own mediator: "a meeting ... is not considered a breach").
- A withdrawal of consent takes back every release of an undelivered exchange the person is a
  party to; when consent returns those items go back to review (never straight to anyone).
  An opened (delivered) item stays opened: its recipient may open it again whenever screening
  allows. Letters to the mediators are never listed to a participant.
- A returned item's note: its sender may read it iff the case is not closed and their consent is
  given.
- Retention: nothing is purged under a legal hold; otherwise an item goes once its state's period
  (plus at most the 14-day grace) has passed, and never before its period. A released item the
  relay held at a fetch (screening blocked it then) runs on the review-wait period while held, so
  the model accepts either period for an item that was ever blocked.

Bounded for CI (``RELAY_STATEFUL_EXAMPLES``, ``RELAY_STATEFUL_STEPS`` run more).
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from relay.client import passphrase
from relay.client.kdf import TEST_KDF
from relay.client.scenario import Someone, World, build_world
from relay.client.sdk import Client, ProblemError
from relay.envelope import Identity
from relay.server.app import create_app
from relay.server.context import CONTEXT, Context
from relay.server.services import retention
from relay.server.settings import Settings
from relay.wire import PAUSE_REASONS, RESUME_REASONS, WITHHOLD_REASONS
from storage import audit
from storage.clock import iso

from .conftest import MovableClock

EXAMPLES = int(os.environ.get("RELAY_STATEFUL_EXAMPLES", "100"))
STEPS = int(os.environ.get("RELAY_STATEFUL_STEPS", "30"))
DAY = timedelta(days=1)
T = TypeVar("T")


# -- one real relay for the whole test, on its own event loop in a thread -----------------------


class LiveRelay:
    """A relay served by aiohttp on loopback from a background event loop, with the SDK's HTTP
    session on the same loop; the synchronous state machine drives it through :meth:`run`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.clock = MovableClock()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="stateful-relay", daemon=True)
        self.requests = 0  # plain HTTP calls the checks made
        self.checks = 0  # invariant checks (after every step)
        self.examples = 0
        self.audit_head: str | None = None  # the chain's head at the last check, and its seq
        self.audit_seq: int | None = None
        self.tally: Counter[str] = Counter()  # what the runs did, to see that every rule was reached

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        codes: list[str] = []
        # Background workers off: purges run when the machine says so, on the moved clock. Quotas
        # and the key-bundle limit raised: a long run sends more than a person's daily share.
        settings_ = Settings(data_dir=self.data_dir, purge_interval_seconds=0, scrub_interval_seconds=0,
                             quota_items_per_day=100_000, quota_mediator_items_per_day=100_000,
                             bundle_fetches_per_hour=100_000)
        app = create_app(settings_, clock=self.clock, bootstrap_printer=codes.append)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self.ctx: Context = app[CONTEXT]
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        self.world: World = await build_world(self.url, codes[0], kdf=TEST_KDF, http=self.http)

    def stop(self) -> None:
        async def _stop() -> None:
            await self.http.close()
            await self.runner.cleanup()

        self.run(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def live_relay(tmp_path_factory: pytest.TempPathFactory) -> Any:
    relay = LiveRelay(tmp_path_factory.mktemp("stateful") / "relay-data")
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()


class Party:
    """Someone signed in on their own device or at the kiosk, signed in again after the clock
    moves (sessions are short and idle-limited)."""

    def __init__(self, relay: LiveRelay, who: Someone, *, on_terminal: bool = False) -> None:
        self.relay, self.who, self.on_terminal = relay, who, on_terminal
        self._client: Client | None = None

    @property
    def id(self) -> str:
        return self.who.person_id

    async def client(self) -> Client:
        if self._client is None:
            self._client = await self.relay.world.session(self.who, on_terminal=self.on_terminal,
                                                          http=self.relay.http)
        return self._client

    async def forget(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()


# -- the model ----------------------------------------------------------------------------------


@dataclass
class Item:
    id: str
    sender: str
    recipient: str | None  # None: to the case's mediators
    text: bytes
    by_mediator: bool
    submitted: datetime
    state: str  # pending, released, delivered, returned, withheld, held_consent, purged
    delivered_text: bytes | None = None
    decided: datetime | None = None
    opened: datetime | None = None
    ever_blocked: bool = False  # released but not deliverable at some check: the relay held it
    content_checked: bool = False  # fetched and decrypted since its release


@dataclass
class Cond:
    id: str
    restricted: str
    protected_people: frozenset[str]
    protected_side: str | None
    direction: str
    exception: bool
    until: datetime | None
    lifted: bool = False


@dataclass
class Appr:
    id: str
    condition: str
    directions: frozenset[str]
    kinds: frozenset[str]
    until: datetime
    revoked: bool = False


@dataclass
class Model:
    case_id: str
    sides: dict[str, str]  # participant id -> 'victim' / 'offender'
    mediator: str
    status: str = "open"
    paused_by_coordinator: bool = False
    closed_at: datetime | None = None
    legal_hold: bool = False
    consent: dict[str, str] = field(default_factory=dict)
    items: dict[str, Item] = field(default_factory=dict)
    conditions: dict[str, Cond] = field(default_factory=dict)
    approvals: dict[str, Appr] = field(default_factory=dict)

    def _protected(self, cond: Cond, person: str) -> bool:
        return person in cond.protected_people or (cond.protected_side is not None
                                                   and self.sides.get(person) == cond.protected_side)

    def between_participants_allowed(self, sender: str, recipient: str, now: datetime) -> bool:
        if self.status != "open" or self.consent[sender] != "given" or self.consent[recipient] != "given":
            return False
        for cond in self.conditions.values():
            if cond.lifted or (cond.until is not None and now >= cond.until):
                continue
            direction = None
            if cond.direction in ("from_restricted", "both") and sender == cond.restricted \
                    and self._protected(cond, recipient):
                direction = "from_restricted"
            elif cond.direction in ("to_restricted", "both") and recipient == cond.restricted \
                    and self._protected(cond, sender):
                direction = "to_restricted"
            if direction is None or cond.exception:
                continue
            if not any(a.condition == cond.id and direction in a.directions and "letter" in a.kinds
                       and not a.revoked and now < a.until for a in self.approvals.values()):
                return False
        return True

    def screening_allows(self, sender: str, recipient: str, now: datetime) -> bool:
        if sender == self.mediator:
            return self.status != "closed" and self.consent[recipient] == "given"
        return self.between_participants_allowed(sender, recipient, now)

    def deliverable(self, item: Item, now: datetime) -> bool:
        return (item.recipient is not None and item.state in ("released", "delivered")
                and self.screening_allows(item.sender, item.recipient, now))

    def deliverable_to(self, person: str, now: datetime) -> set[str]:
        return {i.id for i in self.items.values() if i.recipient == person and self.deliverable(i, now)}

    def note_readable(self, item: Item) -> bool:
        return (item.state == "returned" and self.status != "closed"
                and self.consent.get(item.sender) == "given")

    def live(self) -> list[Item]:
        return [i for i in self.items.values() if i.state != "purged"]

    def purge_window(self, item: Item) -> tuple[datetime, datetime]:
        """(earliest, latest) moment retention may and must take ``item`` (legal hold aside)."""
        grace = 14 * DAY
        plausible: list[tuple[datetime, timedelta]] = []
        if item.state in ("pending", "held_consent"):
            plausible.append((item.submitted, 90 * DAY))
        elif item.state == "released":
            plausible.append((item.decided or item.submitted, 60 * DAY))
            if item.ever_blocked:
                plausible.append((item.submitted, 90 * DAY))
        elif item.state == "delivered":
            assert item.opened is not None
            plausible.append((item.opened, 30 * DAY))
        elif item.state in ("returned", "withheld"):
            assert item.decided is not None
            plausible.append((item.decided, 30 * DAY))
        earliest = min(start + length for start, length in plausible)
        latest = max(start + length + grace for start, length in plausible)
        if self.closed_at is not None:
            closed_due = self.closed_at + 365 * DAY
            earliest, latest = min(earliest, closed_due), min(latest, closed_due)
        return earliest, latest


# -- the machine --------------------------------------------------------------------------------


def letter_text(n: int) -> bytes:
    return f"Letter {n}: words only its reader should see. \u00e9\u00e8 {os.urandom(6).hex()}".encode()


class Lifecycle(RuleBasedStateMachine):
    def __init__(self, relay: LiveRelay) -> None:
        super().__init__()
        self.relay = relay
        self.counter = 0
        self.small_advances = 0
        self.parties: list[Party] = []

    # -- plumbing ---------------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.relay.run(coro)

    def now(self) -> datetime:
        return self.relay.clock.now()

    async def _call(self, party: Party, method: str, path: str, body: Any = None) -> Any:
        client = await party.client()
        self.relay.requests += 1
        return await client.call(method, path, json_body=body)

    def call(self, party: Party, method: str, path: str, body: Any = None) -> Any:
        return self.run(self._call(party, method, path, body))

    def status_of(self, party: Party, method: str, path: str) -> int:
        """The HTTP status of a request (200 or the problem's status)."""
        async def go() -> int:
            client = await party.client()
            assert client._http is not None
            self.relay.requests += 1
            async with client._http.request(method, client.url + path, headers=client._headers()) as response:
                await response.read()
                return response.status

        return self.run(go())

    def expect(self, allowed: bool, coro: Coroutine[Any, Any, T], what: str) -> T | None:
        """Run ``coro``: it must succeed if ``allowed``, and be refused with a problem if not."""
        self.relay.tally[what.split()[0] + (" (refused)" if not allowed else "")] += 1
        try:
            result = self.run(coro)
        except ProblemError as refused:
            if allowed:
                raise AssertionError(f"{what}: refused ({refused.status} {refused.type}) but the model allows it") \
                    from None
            return None
        if not allowed:
            raise AssertionError(f"{what}: accepted but the model refuses it")
        return result

    def forget_sessions(self) -> None:
        for party in self.parties:
            self.run(party.forget())

    # -- a fresh case per example ------------------------------------------------------------

    @initialize()
    def open_case(self) -> None:
        world = self.relay.world
        self.relay.examples += 1
        if self.relay.examples % 100 == 0:  # long runs (RELAY_STATEFUL_EXAMPLES) show they are alive
            print(f"stateful lifecycle: {self.relay.examples} cases so far", flush=True)
        self.coordinator = Party(self.relay, world.coordinator)

        async def setup() -> tuple[Someone, Someone, Someone, str]:
            console = await self.coordinator.client()

            async def enroll(label: str, role: str, relation: str | None, terminal_user: bool = False) -> Someone:
                identity = Identity.generate()
                secret = passphrase.generate() if terminal_user else None
                person = await console.enroll(public=identity.public, label=label, role=role, relation=relation,
                                              institution_id=world.institution_id if terminal_user else None,
                                              key_bundle=TEST_KDF.seal(identity, secret) if secret else None)
                someone = Someone(label, person["id"], identity, passphrase=secret)
                if not terminal_user:
                    kind = {"mediator": "mediator_desk", "participant": "participant_device"}[role]
                    device = await console.call("POST", "/v1/devices", json_body={
                        "kind": kind, "person_id": person["id"], "label": f"{label} device"})
                    someone.device_token = device["device_token"]
                return someone

            mediator = await enroll("Mediator", "mediator", None)
            victim = await enroll("Victim", "participant", "victim")
            offender = await enroll("Offender", "participant", "offender", terminal_user=True)
            case = await console.call("POST", "/v1/cases", json_body={
                "referral_source": "victim", "institution_id": world.institution_id})
            for person in (victim, offender):
                await console.call("POST", f"/v1/cases/{case['id']}/participants",
                                   json_body={"person_id": person.person_id})
            await console.call("POST", f"/v1/cases/{case['id']}/mediators", json_body={"person_id": mediator.person_id})
            return mediator, victim, offender, case["id"]

        mediator, victim, offender, case_id = self.run(setup())
        self.mediator = Party(self.relay, mediator)
        self.victim = Party(self.relay, victim)
        self.offender = Party(self.relay, offender, on_terminal=True)
        # Participants of another case: one on a device, one at the same institution's kiosk.
        self.outsiders = [Party(self.relay, world.victim), Party(self.relay, world.offender, on_terminal=True)]
        self.parties = [self.coordinator, self.mediator, self.victim, self.offender, *self.outsiders]
        self.model = Model(case_id=case_id, sides={victim.person_id: "victim", offender.person_id: "offender"},
                           mediator=mediator.person_id,
                           consent={victim.person_id: "given", offender.person_id: "given"})

    def teardown(self) -> None:
        self.forget_sessions()
        self.verify_whole_chain()

    def participant(self, name: str) -> Party:
        return {"victim": self.victim, "offender": self.offender}[name]

    def other(self, party: Party) -> Party:
        return self.offender if party is self.victim else self.victim

    # -- submitting ---------------------------------------------------------------------------

    def _submit(self, sender: Party, recipient: Party | None) -> Item | None:
        self.counter += 1
        text = letter_text(self.counter)
        m = self.model
        now = self.now()
        if recipient is None:
            allowed = m.status != "closed"
        elif sender is self.mediator:
            allowed = m.status != "closed" and m.consent[recipient.id] == "given"
        else:  # a referral (condition) is accepted into review; a refusal is not
            allowed = m.status == "open" and m.consent[sender.id] == "given" and m.consent[recipient.id] == "given"

        async def send() -> dict[str, Any]:
            client = await sender.client()
            return await client.send(case_id=m.case_id, recipient=recipient.id if recipient else "mediators",
                                     src=io.BytesIO(text))

        sent = self.expect(allowed, send(), f"submit {sender.who.label} -> {recipient.who.label if recipient else 'mediators'}")
        if sent is None:
            return None
        by_mediator = sender is self.mediator
        state = "released" if by_mediator or recipient is None else "pending"
        assert sent["state"] == {"released": "released", "pending": "pending_review"}[state], sent["state"]
        m.items[sent["id"]] = Item(sent["id"], sender.id, recipient.id if recipient else None, text, by_mediator,
                                   now, state, delivered_text=text if by_mediator else None,
                                   decided=now if by_mediator else None)
        return m.items[sent["id"]]

    @rule(sender=st.sampled_from(["victim", "offender"]), review=st.sampled_from([None, "as-written", "redacted"]))
    def participant_writes_to_the_other(self, sender: str, review: str | None) -> None:
        """A letter, and (often) the mediator's release of it at once."""
        self.relay.tally["participant_writes_to_the_other"] += 1
        party = self.participant(sender)
        item = self._submit(party, self.other(party))
        if item is not None and review is not None:
            self._release(item, review == "redacted")

    @rule(sender=st.sampled_from(["victim", "offender"]))
    def participant_writes_to_the_mediators(self, sender: str) -> None:
        self.relay.tally["participant_writes_to_the_mediators"] += 1
        self._submit(self.participant(sender), None)

    @rule(recipient=st.sampled_from(["victim", "offender"]))
    def mediator_writes(self, recipient: str) -> None:
        self.relay.tally["mediator_writes"] += 1
        self._submit(self.mediator, self.participant(recipient))

    # -- review -------------------------------------------------------------------------------

    def pending(self) -> list[Item]:
        return [i for i in self.model.items.values() if i.state == "pending"]  # in the order sent: ids are random

    @precondition(lambda self: bool(self.pending()))
    @rule(data=st.data(), redact=st.booleans())
    def mediator_releases(self, data: st.DataObject, redact: bool) -> None:
        self.relay.tally["mediator_releases"] += 1
        item = data.draw(st.sampled_from(self.pending()), label="item")
        self._release(item, redact)

    def _release(self, item: Item, redact: bool) -> None:
        assert item.recipient is not None
        allowed = self.model.screening_allows(item.sender, item.recipient, self.now())
        rendition = item.text.replace(b"words", b"[redacted]") if redact else item.text

        async def release() -> Any:
            client = await self.mediator.client()
            return await client.release(item.id, io.BytesIO(rendition) if redact else None)

        if self.expect(allowed, release(), f"release {item.id}") is not None:
            item.state, item.delivered_text, item.decided = "released", rendition, self.now()
            item.content_checked = False

    @precondition(lambda self: any(not i.by_mediator for i in self.pending()))
    @rule(data=st.data())
    def mediator_returns(self, data: st.DataObject) -> None:
        self.relay.tally["mediator_returns"] += 1
        item = data.draw(st.sampled_from([i for i in self.pending() if not i.by_mediator]), label="item")

        async def give_back() -> Any:
            client = await self.mediator.client()
            return await client.return_to_sender(item.id, "Please write it again in your own time.")

        self.run(give_back())
        item.state, item.decided = "returned", self.now()

    @precondition(lambda self: bool(self.pending()))
    @rule(data=st.data(), reason=st.sampled_from(WITHHOLD_REASONS))
    def mediator_withholds(self, data: st.DataObject, reason: str) -> None:
        self.relay.tally["mediator_withholds"] += 1
        item = data.draw(st.sampled_from(self.pending()), label="item")

        async def withhold() -> Any:
            client = await self.mediator.client()
            return await client.withhold(item.id, reason)

        self.run(withhold())
        item.state, item.decided = "withheld", self.now()

    # -- the recipient ------------------------------------------------------------------------

    def deliverable_items(self) -> list[Item]:
        now = self.now()
        return [i for i in self.model.items.values() if self.model.deliverable(i, now)]

    @precondition(lambda self: bool(self.deliverable_items()))
    @rule(data=st.data(), acknowledge=st.booleans())
    def recipient_fetches(self, data: st.DataObject, acknowledge: bool) -> None:
        self.relay.tally["recipient_fetches"] += 1
        item = data.draw(st.sampled_from(self.deliverable_items()), label="item")
        assert item.recipient is not None
        reader = self.victim if item.recipient == self.victim.id else self.offender
        self._fetch(item, reader, acknowledge)

    def _fetch(self, item: Item, reader: Party, acknowledge: bool) -> None:
        """Fetch, verify the release and the sender, decrypt: exactly what the mediator released."""
        out = io.BytesIO()

        async def fetch() -> dict[str, Any]:
            client = await reader.client()
            return await client.fetch(item.id, out, acknowledge=acknowledge)

        view = self.run(fetch())
        assert out.getvalue() == item.delivered_text, "fetched content is not what the mediator released"
        assert view["sender"]["id"] == item.sender
        item.content_checked = True
        self.relay.tally["fetched and decrypted"] += 1
        if acknowledge and item.state == "released":
            item.state, item.opened = "delivered", self.now()
        assert view["state"] == ("delivered" if item.state == "delivered" else "released"), view["state"]

    @precondition(lambda self: bool(self.model.items))
    @rule(data=st.data(), who=st.sampled_from(["victim", "offender", "outsider-device", "outsider-kiosk"]))
    def someone_probes_an_item(self, data: st.DataObject, who: str) -> None:
        """Any participant asks for any item's delivery, its original and its note."""
        self.relay.tally["someone_probes_an_item"] += 1
        item = data.draw(st.sampled_from(list(self.model.items.values())), label="item")
        party = {"victim": self.victim, "offender": self.offender, "outsider-device": self.outsiders[0],
                 "outsider-kiosk": self.outsiders[1]}[who]
        if not self.signed_in_or_refused(party):
            return
        now = self.now()
        may_deliver = item.recipient == party.id and self.model.deliverable(item, now)
        for path in (f"/v1/items/{item.id}/delivery", f"/v1/items/{item.id}/delivery/content"):
            got = self.status_of(party, "GET", path)
            assert got == (200 if may_deliver else 404), f"{who} GET {path}: {got}, model says {may_deliver}"
        is_sender = item.sender == party.id and item.state != "purged"
        assert self.status_of(party, "GET", f"/v1/items/{item.id}") == (200 if is_sender else 404)
        may_note = is_sender and self.model.note_readable(item)
        got = self.status_of(party, "GET", f"/v1/items/{item.id}/note")
        assert got == (200 if may_note else 404), f"{who} note of {item.id}: {got}, model says {may_note}"

    # -- consent, conditions, approvals ---------------------------------------------------------

    # Toggles (consent, pause): a withdrawal is then as likely to be followed by a return as by
    # anything else, which is where the interesting sequences are.
    @rule(who=st.sampled_from(["victim", "offender"]))
    def consent_changes(self, who: str) -> None:
        self.relay.tally["consent_changes"] += 1
        m = self.model
        person = self.participant(who).id
        consent = "given" if m.consent[person] == "withdrawn" else "withdrawn"
        self.call(self.coordinator, "POST", f"/v1/cases/{m.case_id}/participants/{person}/consent",
                  {"consent": consent})
        if m.consent[person] == consent:
            return
        m.consent[person] = consent
        for item in m.items.values():
            if person not in (item.sender, item.recipient) or item.recipient is None:
                continue
            if consent == "withdrawn" and item.state in ("pending", "released"):
                item.state = "held_consent"  # every undelivered exchange of theirs, released or not
            elif consent == "given" and item.state == "held_consent":
                item.state, item.delivered_text, item.decided = "pending", None, None  # back to review

    @rule(restricted=st.sampled_from(["victim", "offender"]), by_side=st.booleans(),
          direction=st.sampled_from(["from_restricted", "to_restricted", "both"]), exception=st.booleans(),
          kind=st.sampled_from(["court_order", "parole_condition", "institutional"]), lapses=st.booleans())
    def condition_added(self, restricted: str, by_side: bool, direction: str, exception: bool, kind: str,
                        lapses: bool) -> None:
        self.relay.tally["condition_added"] += 1
        m = self.model
        party = self.participant(restricted)
        protected = self.other(party)
        now = self.now()
        until = now + timedelta(hours=1) if lapses else None
        body = {"kind": kind, "reference": f"REF-{self.counter}", "restricted_id": party.id,
                "protected_people": [] if by_side else [protected.id],
                "protected_case_id": m.case_id if by_side else None,
                "protected_side": m.sides[protected.id] if by_side else None,
                "direction": direction, "effective_from": iso(now - timedelta(minutes=5)),
                "effective_until": iso(until) if until else None, "program_exception": exception}
        made = self.call(self.coordinator, "POST", "/v1/conditions", body)
        m.conditions[made["id"]] = Cond(made["id"], party.id, frozenset() if by_side else frozenset({protected.id}),
                                        m.sides[protected.id] if by_side else None, direction, exception, until)

    def unlifted(self) -> list[Cond]:
        return [c for c in self.model.conditions.values() if not c.lifted]

    @precondition(lambda self: bool(self.unlifted()))
    @rule(data=st.data())
    def condition_lifted(self, data: st.DataObject) -> None:
        self.relay.tally["condition_lifted"] += 1
        cond = data.draw(st.sampled_from(self.unlifted()), label="condition")
        self.call(self.coordinator, "POST", f"/v1/conditions/{cond.id}/lift")
        cond.lifted = True

    @precondition(lambda self: bool(self.unlifted()))
    @rule(data=st.data(), directions=st.sampled_from([["from_restricted"], ["to_restricted"],
                                                      ["from_restricted", "to_restricted"]]),
          kinds=st.sampled_from([["letter"], ["video"], ["letter", "video"]]), lapses=st.booleans())
    def approval_recorded(self, data: st.DataObject, directions: list[str], kinds: list[str], lapses: bool) -> None:
        self.relay.tally["approval_recorded"] += 1
        cond = data.draw(st.sampled_from(self.unlifted()), label="condition")
        until = self.now() + (timedelta(hours=1) if lapses else 100 * DAY)
        made = self.call(self.coordinator, "POST", "/v1/approvals", {
            "case_id": self.model.case_id, "condition_id": cond.id, "directions": directions, "kinds": kinds,
            "valid_until": iso(until)})
        self.model.approvals[made["id"]] = Appr(made["id"], cond.id, frozenset(directions), frozenset(kinds), until)

    def standing_approvals(self) -> list[Appr]:
        return [a for a in self.model.approvals.values() if not a.revoked]

    @precondition(lambda self: bool(self.standing_approvals()))
    @rule(data=st.data())
    def approval_revoked(self, data: st.DataObject) -> None:
        self.relay.tally["approval_revoked"] += 1
        approval = data.draw(st.sampled_from(self.standing_approvals()), label="approval")
        self.call(self.coordinator, "POST", f"/v1/approvals/{approval.id}/revoke")
        approval.revoked = True

    # -- the case -----------------------------------------------------------------------------

    @rule(data=st.data())
    def mediator_pauses_or_resumes(self, data: st.DataObject) -> None:
        self.relay.tally["mediator_pauses_or_resumes"] += 1
        m = self.model
        paused = m.status != "paused"
        reason = data.draw(st.sampled_from(PAUSE_REASONS if paused else RESUME_REASONS), label="reason")
        body = {"paused": paused, "reason": reason}
        if m.status == "closed" or (not paused and m.status == "paused" and m.paused_by_coordinator):
            self.expect(False, self._call(self.mediator, "POST", f"/v1/cases/{m.case_id}/pause", body), "pause")
            return
        self.call(self.mediator, "POST", f"/v1/cases/{m.case_id}/pause", body)
        if m.status != ("paused" if paused else "open"):
            m.status, m.paused_by_coordinator = ("paused" if paused else "open"), False

    @rule()
    def coordinator_pauses_or_opens(self) -> None:
        self.relay.tally["coordinator_pauses_or_opens"] += 1
        self._set_status("open" if self.model.status == "paused" else "paused")

    # Closing ends everything in the case: only once something has happened in it.
    @precondition(lambda self: len(getattr(self, "model", Model("", {}, "")).items) >= 3)
    @rule()
    def coordinator_closes(self) -> None:
        self.relay.tally["coordinator_closes"] += 1
        self._set_status("closed")

    def _set_status(self, status: str) -> None:
        m = self.model
        path = f"/v1/cases/{m.case_id}/status"
        if m.status == "closed":
            self.expect(False, self._call(self.coordinator, "POST", path, {"status": status}), "status")
            return
        self.call(self.coordinator, "POST", path, {"status": status})
        if m.status != status:
            m.status, m.paused_by_coordinator = status, status == "paused"
            if status == "closed":
                m.closed_at = self.now()
                # The kiosk no longer serves someone whose only case there is closed: even a
                # session opened before the closing ends.
                if self.offender._client is not None:
                    self.expect(False, self._call(self.offender, "GET", "/v1/inbox"), "kiosk-after-close")
                    self.run(self.offender.forget())

    @rule(hold=st.booleans())
    def legal_hold(self, hold: bool) -> None:
        self.relay.tally["legal_hold"] += 1
        self.call(self.coordinator, "POST", f"/v1/cases/{self.model.case_id}/legal-hold", {"hold": hold})
        self.model.legal_hold = hold

    # -- time and retention ---------------------------------------------------------------------

    @precondition(lambda self: self.small_advances < 4)
    @rule()
    def two_hours_pass(self) -> None:
        """Conditions and approvals made to lapse within the hour do."""
        self.relay.tally["two_hours_pass"] += 1
        self.small_advances += 1
        self.forget_sessions()
        self.relay.clock.advance(hours=2)

    @rule(advance=st.booleans())
    def retention_runs(self, advance: bool) -> None:
        """A purge run, now or after 40 days (every period ends well away from a multiple of 40)."""
        self.relay.tally["retention_runs"] += 1
        if advance:
            self.forget_sessions()
            self.relay.clock.advance(days=40)
        m = self.model
        before = {e["item_id"] for e in self.run(self._tombstones())}
        self.run(retention.purge(self.relay.ctx))
        self.verify_whole_chain()
        now = self.now()
        purged = {e["item_id"] for e in self.run(self._tombstones())} - before
        live = {i.id: i for i in m.live()}
        assert purged <= set(live), f"purged twice or unknown: {purged - set(live)}"
        for item in live.values():
            gone = item.id in purged
            if m.legal_hold:
                assert not gone, f"{item.id} purged under a legal hold"
                continue
            if item.recipient is None:
                continue  # to the mediators: its state (read or not) is the mediator's, not modelled
            earliest, latest = m.purge_window(item)
            assert not (gone and now < earliest), f"{item.id} ({item.state}) purged before its period"
            assert gone or now < latest, f"{item.id} ({item.state}) kept past its period"
        for item_id in purged:
            live[item_id].state = "purged"
        self.relay.tally["items purged"] += len(purged)

    async def _tombstones(self) -> list[dict[str, Any]]:
        return await audit.of_case(self.relay.ctx.db, self.model.case_id, actions=("item.purged",), limit=100_000)

    # -- after every step -----------------------------------------------------------------------

    def signed_in_or_refused(self, party: Party) -> bool:
        """Sign ``party`` in; a kiosk refuses someone whose only case is closed (nothing to serve)."""
        try:
            self.run(party.client())
            return True
        except ProblemError as refused:
            mine = party in (self.victim, self.offender)
            assert party.on_terminal and mine and self.model.status == "closed", \
                f"{party.who.label} could not sign in: {refused.status} {refused.type}"
            return False

    @invariant()
    def nobody_sees_more_or_less_than_the_model_allows(self) -> None:
        if not hasattr(self, "model"):
            return
        m = self.model
        self.relay.checks += 1
        for party in (self.victim, self.offender, *self.outsiders):
            if not self.signed_in_or_refused(party):
                continue
            entries = self.call(party, "GET", "/v1/inbox")
            listed = {entry["id"] for entry in entries}
            expected = m.deliverable_to(party.id, self.now())
            for entry in entries:
                if entry["id"] in expected:  # as the model has it: opened or not, and from whom
                    item = m.items[entry["id"]]
                    assert (entry["state"], entry["sender_id"]) == (item.state, item.sender), entry
            extra, missing = listed - expected, expected - listed
            assert not extra, f"{party.who.label} sees {extra} that the model does not allow"
            assert not missing, f"{party.who.label} misses {missing} that the model says are deliverable"
        now = self.now()
        for item in m.items.values():
            if item.recipient is None:
                continue
            reader = self.victim if item.recipient == self.victim.id else self.offender
            allowed = m.deliverable(item, now)
            if item.state == "released" and not allowed:
                item.ever_blocked = True
            self.relay.tally[f"seen: {item.state}{' deliverable' if allowed else ''}"] += 1
            if not self.signed_in_or_refused(reader):
                assert not allowed
                continue
            got = self.status_of(reader, "GET", f"/v1/items/{item.id}/delivery")
            assert got == (200 if allowed else 404), f"delivery of {item.id} ({item.state}): {got}, model {allowed}"
            if allowed and not item.content_checked:
                self._fetch(item, reader, acknowledge=False)

    @invariant()
    def the_audit_chain_verifies(self) -> None:
        """After every step, the entries added since the last check link on from the head seen
        then, each hash recomputed (``storage.audit.entry_hash``); at the end of every case and
        after every purge, the relay's whole-chain ``audit.verify`` with that head expected. (The whole walk after every step grows with the chain the run builds.)"""
        if self.relay.audit_head is None or self.relay.audit_seq is None:
            self.verify_whole_chain()
            return
        rows = self.run(audit.entries(self.relay.ctx.db, after_seq=self.relay.audit_seq - 1, limit=1_000_000))
        if not rows or rows[0]["seq"] != self.relay.audit_seq:  # pruned past it: only the whole walk can tell
            self.verify_whole_chain()
            return
        assert rows[0]["hash"] == self.relay.audit_head, "audit chain: the last entry seen has changed"
        prev, seq = self.relay.audit_head, self.relay.audit_seq
        for row in rows[1:]:
            assert row["seq"] == seq + 1, f"audit chain: entry {seq + 1} missing"
            assert row["prev_hash"] == prev, f"audit chain: entry {row['seq']} does not link"
            assert audit.entry_hash(prev, row) == row["hash"], f"audit chain: entry {row['seq']} altered"
            prev, seq = row["hash"], row["seq"]
        self.relay.audit_head, self.relay.audit_seq = prev, seq

    def verify_whole_chain(self) -> None:
        result = self.run(audit.verify(self.relay.ctx.db, expect_head=self.relay.audit_head))
        assert result.ok, f"audit chain: {result.problem} at {result.bad_seq}"
        last = self.run(audit.entries(self.relay.ctx.db, after_seq=result.first_seq + result.entries - 2, limit=1))
        self.relay.audit_head, self.relay.audit_seq = result.head, last[0]["seq"] if last else None
        self.relay.tally["whole audit chain verified"] += 1


def test_no_recipient_ever_sees_what_release_and_screening_do_not_allow(live_relay: LiveRelay) -> None:
    began = time.perf_counter()
    run_state_machine_as_test(lambda: Lifecycle(live_relay), settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
        suppress_health_check=list(HealthCheck)))
    elapsed = time.perf_counter() - began
    print(f"\nstateful lifecycle: {live_relay.examples} cases (examples) of up to {STEPS} steps,"
          f" {live_relay.checks} checks of every recipient after a step, {live_relay.requests} probe requests,"
          f" {elapsed:.1f} s")
    print("  " + ", ".join(f"{name}: {n}" for name, n in sorted(live_relay.tally.items())))
