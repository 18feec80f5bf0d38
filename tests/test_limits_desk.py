"""Issue 10 (limits, aggregated security events, key-bundle lockouts, reason codes, clear
refusals, scrub) and issue 11's server side (the desk's queue, pause, kiosk codes, timeline),
through the real relay on loopback with real SQLite and blob files."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relay import envelope, ids
from relay.client.kdf import TEST_KDF
from relay.client.scenario import World, build_world
from relay.client.sdk import ProblemError
from relay.clock import stamp
from relay.envelope import Domain, Identity
from relay.server import admin
from relay.server.app import create_app
from relay.server.context import CONTEXT
from relay.server.services import retention, scrub
from relay.server.settings import Settings
from relay.wire import WITHHOLD_REASONS
from storage import audit, security

from .conftest import MovableClock, Relay, close, everyone

PROBLEM = "urn:mediation-relay:problem:"


@pytest.fixture
def relay_with(tmp_path: Path, aiohttp_server: Any) -> Any:
    """A relay with some settings changed (small quotas, short limits)."""

    async def start(**changes: Any) -> Relay:
        data_dir = tmp_path / "relay-data"
        clock = MovableClock()
        codes: list[str] = []
        app = create_app(Settings(data_dir=data_dir, **changes), clock=clock, bootstrap_printer=codes.append)
        return Relay(await aiohttp_server(app), data_dir, clock, codes)

    return start


def rows(relay: Relay, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    db = sqlite3.connect(f"file:{relay.data_dir / 'relay.sqlite3'}?mode=ro", uri=True)
    try:
        db.row_factory = sqlite3.Row
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


async def raw(relay: Relay, method: str, path: str, *, device: str | None = None, session: str | None = None,
              json_body: Any = None) -> tuple[int, Any]:
    headers = {}
    if device:
        headers["X-Relay-Device"] = device
    if session:
        headers["Authorization"] = f"Bearer {session}"
    async with aiohttp.ClientSession() as http, http.request(method, relay.url + path, json=json_body,
                                                             headers=headers) as response:
        return response.status, await response.json(content_type=None)


def letter(text: bytes = b"a letter") -> io.BytesIO:
    return io.BytesIO(text)


def court_order(world: World, relay: Relay, reference: str = "ONCJ 2024-1187") -> dict[str, Any]:
    return {"kind": "court_order", "reference": reference, "restricted_id": world.offender.person_id,
            "protected_people": [world.victim.person_id], "direction": "both",
            "effective_from": stamp(relay.clock.now() - timedelta(days=1)), "program_exception": False}


# -- the desk's queue: labels, never raw ids alone, and the flags ---------------------------------


async def test_the_queue_shows_labels_and_every_flag_a_mediator_acts_on(relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        plain = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter())
        [entry] = await mediator.call("GET", "/v1/review/queue")
        assert entry["id"] == plain["id"] and entry["case_label"] == "Case 1"
        assert entry["sender"] == {"id": world.victim.person_id, "label": "Victim", "relation": "victim"}
        assert entry["recipient"]["label"] == "Offender" and entry["kind"] == "letter" and entry["submitted_at"]
        assert entry["flags"] == {"held": False, "hold_code": None, "hold_reason": None,
                                  "participant_withdrawn": False, "withdrawn": [], "case_paused": False,
                                  "pause_reason": None, "pause_reason_label": None, "damaged": False,
                                  "damaged_parts": []}
        assert entry["awaiting_approval"] is False and entry["approval"] is None

        # A court order: the next letter waits for the national unit, and the queue names the condition.
        condition = await coordinator.call("POST", "/v1/conditions", json_body=court_order(world, relay))
        referred = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter())
        entry = next(q for q in await mediator.call("GET", "/v1/review/queue") if q["id"] == referred["id"])
        assert entry["awaiting_approval"] is True
        assert entry["approval"] == {
            "condition": {"id": condition["id"], "kind": "court_order", "reference": "ONCJ 2024-1187"},
            "approval_would_allow": {"case_id": world.case_id, "condition_id": condition["id"],
                                     "directions": ["to_restricted"], "kinds": ["letter"]}}
        # Releasing it now says so, to the mediator: the condition and what an approval would allow (item 6).
        with pytest.raises(ProblemError) as refused:
            await mediator.release(referred["id"])
        assert refused.value.status == 403 and refused.value.type == "approval-required"
        assert refused.value.problem["condition"]["reference"] == "ONCJ 2024-1187"
        assert refused.value.problem["approval_would_allow"]["directions"] == ["to_restricted"]
        await coordinator.call("POST", f"/v1/conditions/{condition['id']}/lift")

        # The mediator pauses the case: every entry says so, with the reason in both languages.
        await mediator.call("POST", f"/v1/cases/{world.case_id}/pause",
                            json_body={"paused": True, "reason": "safety-assessment"})
        flags = (await mediator.call("GET", "/v1/review/queue"))[0]["flags"]
        assert flags["case_paused"] is True and flags["pause_reason"] == "safety-assessment"
        assert flags["pause_reason_label"]["fr"] == "Évaluation continue de la sécurité"
        await mediator.call("POST", f"/v1/cases/{world.case_id}/pause",
                            json_body={"paused": False, "reason": "assessment-complete"})

        # The offender withdraws: their exchanges are held, and the queue says who and why.
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/participants/{world.offender.person_id}/consent",
                               json_body={"consent": "withdrawn"})
        for entry in await mediator.call("GET", "/v1/review/queue"):
            assert entry["state"] == "held" and entry["flags"]["held"] is True
            assert entry["flags"]["hold_code"] == "consent-withdrawn"
            assert entry["flags"]["hold_reason"]["en"] == "A participant withdrew their consent"
            assert entry["flags"]["withdrawn"] == [{"id": world.offender.person_id, "label": "Offender"}]

        # The mediator's inbox has the same labels.
        await victim.send(case_id=world.case_id, recipient="mediators", src=letter(b"to you"))
        [mine] = await mediator.call("GET", "/v1/review/inbox")
        assert mine["case_label"] == "Case 1" and mine["sender"]["label"] == "Victim"
        assert mine["recipient"] == {"id": None, "label": "mediators", "to_mediators": True}
    finally:
        await close(coordinator, victim, mediator, offender)


# -- pause and resume by the case's mediators -----------------------------------------------------


async def test_a_cases_mediator_pauses_and_resumes_it_with_a_reason_and_it_is_audited(
        relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter())
        await mediator.release(sent["id"])
        path = f"/v1/cases/{world.case_id}/pause"
        with pytest.raises(ProblemError) as free_text:
            await mediator.call("POST", path, json_body={"paused": True, "reason": "because"})
        assert free_text.value.status == 422 and "safety-assessment" in free_text.value.problem["accepted"]
        assert (await coordinator.call("GET", f"/v1/cases/{world.case_id}"))["status"] == "open"

        paused = await mediator.call("POST", path, json_body={"paused": True, "reason": "safety-assessment"})
        assert paused["status"] == "paused" and paused["changed"] is True
        entry = rows(relay, "SELECT * FROM audit_log WHERE action = 'case.paused'")[-1]
        assert (entry["actor_person"], entry["code"], entry["case_id"]) == (
            world.mediator.person_id, "safety-assessment", world.case_id)
        assert await offender.call("GET", "/v1/inbox") == []  # held at fetch while paused

        resumed = await mediator.call("POST", path, json_body={"paused": False, "reason": "assessment-complete"})
        assert resumed["status"] == "open" and resumed["items_released_from_hold"] == 1
        assert [i["id"] for i in await offender.call("GET", "/v1/inbox")] == [sent["id"]]
        assert rows(relay, "SELECT code FROM audit_log WHERE action = 'case.resumed'")[-1]["code"] == "assessment-complete"

        # A pause the national unit made is the national unit's to lift.
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/status", json_body={"status": "paused"})
        with pytest.raises(ProblemError) as theirs:
            await mediator.call("POST", path, json_body={"paused": False, "reason": "assessment-complete"})
        assert theirs.value.status == 409
        await coordinator.call("POST", path, json_body={"paused": False, "reason": "assessment-complete"})
        assert (await coordinator.call("GET", f"/v1/cases/{world.case_id}"))["status"] == "open"
    finally:
        await close(coordinator, victim, mediator, offender)


# -- kiosk codes ------------------------------------------------------------------------------------


async def test_a_kiosk_code_names_its_participant_only_at_their_institution_and_wrong_codes_are_limited(
        relay_with: Any) -> None:
    relay = await relay_with(kiosk_code_attempts_per_terminal=5)
    world = await build_world(relay.url, relay.codes[0], kdf=TEST_KDF)
    coordinator = await world.session(world.coordinator)
    try:
        # Enrolling a kiosk user returns their code once; the relay keeps only its hash.
        identity = Identity.generate()
        enrolled = await coordinator.enroll(public=identity.public, label="Kiosk user", role="participant",
                                            relation="offender_family", institution_id=world.institution_id,
                                            key_bundle=TEST_KDF.seal(identity, "correct horse battery staple"))
        code = enrolled["kiosk_code"]
        assert len(code) == 9 and code[4] == "-"
        stored = (relay.data_dir / "relay.sqlite3").read_bytes() + b"".join(
            p.read_bytes() for p in relay.data_dir.glob("relay.sqlite3-*"))
        assert code.encode() not in stored and code.replace("-", "").encode() not in stored

        terminal = world.terminal_token
        issued = await coordinator.call("POST", f"/v1/people/{world.offender.person_id}/kiosk-code")
        status, body = await raw(relay, "POST", "/v1/kiosk/identify", device=terminal,
                                 json_body={"code": issued["kiosk_code"].lower().replace("-", " ")})
        assert (status, body) == (200, {"person_id": world.offender.person_id})
        # Not yet in a case at this institution: this terminal does not serve them, the same answer as wrong.
        status, body = await raw(relay, "POST", "/v1/kiosk/identify", device=terminal, json_body={"code": code})
        assert status == 404 and body["type"] == PROBLEM + "not-found"
        # A new code replaces the old one.
        again = await coordinator.call("POST", f"/v1/people/{world.offender.person_id}/kiosk-code")
        status, _ = await raw(relay, "POST", "/v1/kiosk/identify", device=terminal,
                              json_body={"code": issued["kiosk_code"]})
        assert status == 404 and again["kiosk_code"] != issued["kiosk_code"]
        # Another device kind may not ask at all.
        status, body = await raw(relay, "POST", "/v1/kiosk/identify", device=world.victim.device_token,
                                 json_body={"code": again["kiosk_code"]})
        assert status == 403

        # Wrong codes: a few per terminal, then 429 even for a right one; audited in aggregate.
        before = len(rows(relay, "SELECT seq FROM audit_log"))
        for _ in range(3):  # the two 404s above count too: five in all
            status, _ = await raw(relay, "POST", "/v1/kiosk/identify", device=terminal, json_body={"code": "2222-2222"})
            assert status == 404
        status, body = await raw(relay, "POST", "/v1/kiosk/identify", device=terminal,
                                 json_body={"code": again["kiosk_code"]})
        assert status == 429 and body["type"] == PROBLEM + "rate-limited"
        assert len(rows(relay, "SELECT seq FROM audit_log")) - before <= 2
        assert rows(relay, "SELECT SUM(repeats) AS n FROM security_tallies WHERE action = 'kiosk_code.refused'"
                    )[0]["n"] == 4
        relay.clock.advance(minutes=16)
        status, body = await raw(relay, "POST", "/v1/kiosk/identify", device=terminal,
                                 json_body={"code": again["kiosk_code"]})
        assert (status, body) == (200, {"person_id": world.offender.person_id})
    finally:
        await coordinator.close()


# -- the case's timeline ---------------------------------------------------------------------------


async def test_the_timeline_lists_what_happened_with_labels_and_no_content(relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        words = b"the words of a letter nobody else may read"
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter(words))
        await mediator.release(sent["id"])
        await offender.fetch(sent["id"], io.BytesIO())
        held = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter())
        await mediator.withhold(held["id"], "discuss-in-person")
        await mediator.call("POST", f"/v1/cases/{world.case_id}/pause",
                            json_body={"paused": True, "reason": "participant-request"})
        timeline = await mediator.call("GET", f"/v1/cases/{world.case_id}/timeline")
        assert timeline["case_label"] == "Case 1"
        events = [(e["event"], e["item_id"]) for e in timeline["events"]]
        assert events[:3] == [("case-opened", None), ("participant-added", None), ("participant-added", None)]
        assert ("submitted", sent["id"]) in events and ("released", sent["id"]) in events
        assert ("opened", sent["id"]) in events and ("withheld", held["id"]) in events
        assert events.index(("released", sent["id"])) < events.index(("opened", sent["id"]))
        released = next(e for e in timeline["events"] if e["event"] == "released")
        assert released["by"] == {"id": world.mediator.person_id, "label": "Mediator"}
        assert released["sender"]["label"] == "Victim" and released["recipient"]["label"] == "Offender"
        assert released["item_kind"] == "letter"
        pause = next(e for e in timeline["events"] if e["event"] == "case-paused")
        assert pause["code"] == "participant-request" and pause["reason"]["en"] == "A participant asked for a pause"
        withheld = next(e for e in timeline["events"] if e["event"] == "withheld")
        assert withheld["reason"]["fr"] == "Le médiateur en discutera d'abord avec l'expéditeur"
        assert b"words of a letter" not in str(timeline).encode()
        page = await mediator.call("GET", f"/v1/cases/{world.case_id}/timeline?after=3&limit=2")
        assert [e["seq"] for e in page["events"]] == [e["seq"] for e in timeline["events"] if e["seq"] > 3][:2]
        assert page["next_after"] == page["events"][-1]["seq"]
    finally:
        await close(coordinator, victim, mediator, offender)


# -- item 15: quotas ---------------------------------------------------------------------------------


async def test_quotas_refuse_with_their_own_problem_and_are_announced(relay_with: Any) -> None:
    relay = await relay_with(quota_items_per_day=3, quota_pending_bytes=1024, quota_mediator_items_per_day=2)
    world = await build_world(relay.url, relay.codes[0], kdf=TEST_KDF)
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        limits = await victim.call("GET", "/v1/limits")
        assert limits["quotas"]["participant"] == {"items_per_day": 3, "pending_bytes": 1024}
        assert limits["quotas"]["mediator"]["items_per_day"] == 2
        assert [r["code"] for r in limits["withhold_reasons"]] == list(WITHHOLD_REASONS)

        # Pending bytes: what waits for review. A second 600-byte letter would pass 1,024.
        first = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter(b"x" * 500))
        with pytest.raises(ProblemError) as waiting:
            await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter(b"y" * 500))
        assert waiting.value.status == 429 and waiting.value.type == "quota-exceeded"
        assert waiting.value.problem["quota"] == "pending_bytes" and waiting.value.problem["limit"] == 1024
        await mediator.release(first["id"])  # decided: its bytes no longer wait

        # Items per day (letters to the mediators count too), then the rolling day frees one up.
        await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter(b"y" * 500))
        await victim.send(case_id=world.case_id, recipient="mediators", src=letter())
        with pytest.raises(ProblemError) as daily:
            await victim.send(case_id=world.case_id, recipient="mediators", src=letter())
        problem = daily.value.problem
        assert (daily.value.status, problem["quota"], problem["limit"], problem["used"]) == (
            429, "items_per_day", 3, 3)
        assert problem["resets_at"] > first["submitted_at"]
        assert len(await victim.call("GET", "/v1/items/sent")) == 3  # nothing of the refused ones kept

        # The mediator has a limit of their own.
        await mediator.send(case_id=world.case_id, recipient=world.victim.person_id, src=letter())
        await mediator.send(case_id=world.case_id, recipient=world.victim.person_id, src=letter())
        with pytest.raises(ProblemError) as theirs:
            await mediator.send(case_id=world.case_id, recipient=world.victim.person_id, src=letter())
        assert theirs.value.type == "quota-exceeded" and theirs.value.problem["limit"] == 2

        relay.clock.advance(days=1, seconds=1)
        again = await world.session(world.victim)  # (the earlier sessions have expired)
        try:
            await again.send(case_id=world.case_id, recipient="mediators", src=letter())
        finally:
            await again.close()
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_parallel_submissions_cannot_pass_the_daily_quota_together(relay_with: Any) -> None:
    relay = await relay_with(quota_items_per_day=3)
    world = await build_world(relay.url, relay.codes[0], kdf=TEST_KDF)
    victim = await world.session(world.victim)
    try:
        results = await asyncio.gather(*(victim.send(case_id=world.case_id, recipient="mediators", src=letter())
                                         for _ in range(12)), return_exceptions=True)
        accepted = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if isinstance(r, ProblemError)]
        assert len(accepted) == 3 and len(refused) == 9
        assert {r.type for r in refused} == {"quota-exceeded"}
        assert rows(relay, "SELECT COUNT(*) AS n FROM items")[0]["n"] == 3
        # No blob of a refused submission lingers: three items, three blobs.
        assert len([p for p in (relay.data_dir / "blobs" / "objects").rglob("*") if p.is_file()]) == 3
    finally:
        await victim.close()


# -- item 16: refusals do not grow the audit chain at will ---------------------------------------------


async def test_a_thousand_refused_sign_ins_add_a_handful_of_entries_and_the_chain_verifies(
        relay: Relay, world: World) -> None:
    device = str(world.victim.device_token)
    before = rows(relay, "SELECT COUNT(*) AS n FROM audit_log")[0]["n"]
    async with aiohttp.ClientSession() as http:

        async def refused_sign_in() -> int:
            async with http.post(relay.url + "/v1/auth/session", headers={"X-Relay-Device": device}, json={
                    "challenge_id": ids.new("challenge"), "signature": "AAAA"}) as response:
                return response.status

        for _ in range(20):
            assert set(await asyncio.gather(*(refused_sign_in() for _ in range(50)))) == {401}
        # A forged signature over a real challenge is refused too, and counted under its person.
        challenge = await (await http.post(relay.url + "/v1/auth/challenge", headers={"X-Relay-Device": device},
                                           json={"person_id": world.victim.person_id})).json()
        statement = envelope.login_statement(challenge=challenge["challenge"], device_id=device.split(".")[0],
                                             person_id=world.victim.person_id)
        forged = envelope.sign(Domain.LOGIN, statement, world.mediator.identity.signing_key)
        async with http.post(relay.url + "/v1/auth/session", headers={"X-Relay-Device": device},
                             json={"challenge_id": challenge["challenge_id"], "signature": forged}) as response:
            assert response.status == 401
    added = rows(relay, "SELECT COUNT(*) AS n FROM audit_log")[0]["n"] - before
    assert added <= 3, added
    ctx = relay.server.app[CONTEXT]
    assert await security.pending_repeats(ctx.db) == 999
    # When the window closes the repeats go into the chain as one entry, and the chain verifies.
    relay.clock.advance(seconds=ctx.settings.security_event_window_seconds + 1)
    await retention.purge(ctx)  # the purge worker (and `relay purge`) write closed windows
    [summary] = rows(relay, "SELECT * FROM audit_log WHERE action = 'security.repeated'")
    assert (summary["subject"], summary["code"], summary["actor_device"]) == ("999", "login.failed",
                                                                             device.split(".")[0])
    assert await security.pending_repeats(ctx.db) == 0
    assert (await audit.verify(ctx.db)).ok


# -- item 17: a stranger at a kiosk cannot lock a participant out ---------------------------------------


async def test_key_bundle_fetches_are_refunded_by_a_prompt_sign_in_limited_per_terminal_and_unlockable(
        relay_with: Any) -> None:
    relay = await relay_with(bundle_fetches_per_hour=3, bundle_fetches_per_terminal_per_hour=5)
    world = await build_world(relay.url, relay.codes[0], kdf=TEST_KDF)
    coordinator = await world.session(world.coordinator)
    terminal, offender = world.terminal_token, world.offender
    path = f"/v1/people/{offender.person_id}/key-bundle"
    try:
        # The owner signing in right after each fetch: never limited.
        for _ in range(5):  # (the person's limit is 3)
            kiosk = await world.session(offender, on_terminal=True)
            await kiosk.close()

        # A stranger's fetches are not refunded by the owner's sign-in much later: after two of
        # theirs, the owner's late sign-in, and one more of theirs, the person's limit (3) is reached.
        for _ in range(2):
            assert (await raw(relay, "GET", path, device=terminal))[0] == 200
        relay.clock.advance(minutes=11)
        kiosk = await world.session(offender, on_terminal=True)  # refunds its own fetch only
        await kiosk.close()
        assert (await raw(relay, "GET", path, device=terminal))[0] == 200
        status, body = await raw(relay, "GET", path, device=terminal)
        assert status == 429 and body["type"] == PROBLEM + "rate-limited" and body["limit"] == "person"
        with pytest.raises(ProblemError) as locked:
            await world.session(offender, on_terminal=True)
        assert locked.value.status == 429
        # The coordinator lifts it (audited); the person signs in again.
        unlocked = await coordinator.call("POST", f"/v1/people/{offender.person_id}/key-bundle/unlock")
        assert unlocked["fetches_cleared"] == 3
        assert rows(relay, "SELECT code FROM audit_log WHERE action = 'key_bundle.unlocked'")[-1]["code"] == "3"
        kiosk = await world.session(offender, on_terminal=True)
        await kiosk.close()

        # One terminal cannot fetch bundle after bundle without anyone signing in.
        others = []
        for n in range(3):
            identity = Identity.generate()
            person = await coordinator.enroll(public=identity.public, label=f"Kiosk user {n}", role="participant",
                                              relation="offender_family", institution_id=world.institution_id,
                                              key_bundle=TEST_KDF.seal(identity, "some words"))
            await coordinator.call("POST", f"/v1/cases/{world.case_id}/participants",
                                   json_body={"person_id": person["id"]})
            others.append(person["id"])
        statuses = [(await raw(relay, "GET", f"/v1/people/{pid}/key-bundle", device=terminal))[0]
                    for pid in others for _ in range(2)]
        assert statuses == [200, 200, 200, 200, 200, 429]
        status, body = await raw(relay, "GET", f"/v1/people/{others[2]}/key-bundle", device=terminal)
        assert status == 429 and body["limit"] == "terminal"
    finally:
        await coordinator.close()


# -- item 8: withhold reasons come from the fixed list ------------------------------------------------


async def test_a_withhold_reason_must_come_from_the_fixed_list(relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter())
        with pytest.raises(ProblemError) as free_text:
            await mediator.withhold(sent["id"], "because")
        assert free_text.value.status == 422 and free_text.value.type == "invalid-field"
        assert free_text.value.problem["accepted"] == list(WITHHOLD_REASONS)
        assert (await mediator.call("GET", f"/v1/items/{sent['id']}"))["state"] == "pending_review"
        assert not rows(relay, "SELECT 1 FROM audit_log WHERE code = 'because'")
        decided = await mediator.withhold(sent["id"], "safety-concern")
        assert decided["state"] == "withheld" and decided["reason_code"] == "safety-concern"
        assert decided["reason_label"]["fr"] == "Le transmettre pourrait mettre quelqu'un en danger"
        assert rows(relay, "SELECT code FROM audit_log WHERE action = 'item.withhold'")[-1]["code"] == "safety-concern"
    finally:
        await close(coordinator, victim, mediator, offender)


# -- item 6: refusals that say what happened ------------------------------------------------------------


async def test_releasing_twice_says_it_was_already_decided_and_when(relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter())
        first = await mediator.release(sent["id"])
        with pytest.raises(ProblemError) as twice:
            await mediator.release(sent["id"])
        assert twice.value.status == 409 and twice.value.type == "already-decided"
        assert twice.value.problem["decision"] == "release"
        assert twice.value.problem["decided_at"] == first["decided_at"]
        assert twice.value.problem["detail"] == f"this item was already released on {first['decided_at']}"
    finally:
        await close(coordinator, victim, mediator, offender)


def _signed_letter(world: World, sender: Any, recipient: str) -> aiohttp.MultipartWriter:
    """A well-formed letter of the case, sealed to its mediator and the sender, signed by the sender."""
    key = envelope.new_content_key()
    blob = envelope.encrypt_bytes(key, b"a letter")
    readers = {world.mediator.person_id: world.mediator, sender.person_id: sender}
    manifest = envelope.item_manifest(
        item_id=ids.new("item"), case_id=world.case_id, kind="letter", sender=sender.person_id, recipient=recipient,
        created_at=stamp(world_now()), content_type="text/plain", size=len(blob), hash=envelope.blob_hash(blob),
        keys={pid: envelope.seal_key(key, p.identity.public.box_pk) for pid, p in sorted(readers.items())})
    form = aiohttp.MultipartWriter("form-data")
    form.append_json({"manifest": manifest, "signature": envelope.sign(Domain.MANIFEST, manifest,
                                                                      sender.identity.signing_key)}
                     ).set_content_disposition("form-data", name="meta")
    form.append(blob, {"Content-Type": "application/octet-stream"}).set_content_disposition(
        "form-data", name="content", filename="sealed.bin")
    return form


def world_now() -> datetime:
    return datetime.now(UTC)


async def test_a_mistyped_recipient_or_oneself_gets_a_plain_answer_not_the_screening_text(
        relay: Relay, world: World) -> None:
    victim = await world.session(world.victim)
    try:
        with pytest.raises(ProblemError) as wrong:  # through the SDK: a mistyped id
            await victim.send(case_id=world.case_id, recipient=ids.new("person"), src=letter())
        assert wrong.value.status == 422 and wrong.value.type == "unknown-recipient"
        assert wrong.value.problem["field"] == "manifest.recipient"
        # Another client that lets a person write to themself gets the same plain answer.
        async with aiohttp.ClientSession() as http:
            async with http.post(relay.url + "/v1/items", data=_signed_letter(world, world.victim, world.victim.person_id),
                                 headers={"X-Relay-Device": str(world.victim.device_token),
                                          "Authorization": f"Bearer {victim.session_token}"}) as response:
                assert response.status == 422, await response.text()
                assert (await response.json(content_type=None))["type"] == PROBLEM + "unknown-recipient"
        assert await victim.call("GET", "/v1/items/sent") == []
    finally:
        await victim.close()


async def test_staff_referral_is_accepted_and_the_refusals_list_what_is(relay: Relay, world: World) -> None:
    coordinator = await world.session(world.coordinator)
    try:
        case = await coordinator.call("POST", "/v1/cases", json_body={"referral_source": "staff",
                                                                     "institution_id": world.institution_id})
        assert case["referral_source"] == "institutional" and case["label"] == "Case 2"
        named = await coordinator.call("POST", "/v1/cases", json_body={
            "referral_source": "victim", "institution_id": world.institution_id, "label": "Riverside 2026-14"})
        assert named["label"] == "Riverside 2026-14"
        with pytest.raises(ProblemError) as offender:
            await coordinator.call("POST", "/v1/cases", json_body={"referral_source": "offender",
                                                                  "institution_id": world.institution_id})
        assert offender.value.type == "offender-request-not-accepted" and "staff" in offender.value.problem["accepted"]
        with pytest.raises(ProblemError) as typo:
            await coordinator.call("POST", "/v1/cases", json_body={"referral_source": "stafff",
                                                                  "institution_id": world.institution_id})
        assert typo.value.type == "invalid-field" and "staff" in typo.value.problem["accepted"]
    finally:
        await coordinator.close()


# -- item 22: the scrub -------------------------------------------------------------------------------


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


async def test_a_flipped_byte_is_found_marked_audited_and_never_served(relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    ctx = relay.server.app[CONTEXT]
    try:
        intact = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter(b"fine"))
        damaged = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter(b"hurt"))
        await mediator.release(intact["id"])
        assert (await scrub.scrub(ctx)).damaged == []
        assert await admin.scrub(relay.data_dir) == 0

        blob_id = rows(relay, "SELECT blob_id FROM items WHERE id = ?", (damaged["id"],))[0]["blob_id"]
        _flip_a_byte(ctx.blobs.path(blob_id))
        report = await scrub.scrub(ctx)
        assert report.damaged == [(damaged["id"], "original")] and report.newly_marked == 1
        entry = rows(relay, "SELECT * FROM audit_log WHERE action = 'item.damaged'")[-1]
        assert (entry["item_id"], entry["code"]) == (damaged["id"], "original")

        with pytest.raises(ProblemError) as refused:
            await mediator.open_item(damaged["id"], io.BytesIO())
        assert refused.value.status == 409 and refused.value.type == "content-damaged"
        entry = next(q for q in await mediator.call("GET", "/v1/review/queue") if q["id"] == damaged["id"])
        assert entry["flags"]["damaged"] is True and entry["flags"]["damaged_parts"] == ["original"]
        # The delivery of the intact one is still served; `relay scrub` reports the damage (exit 2).
        await offender.fetch(intact["id"], io.BytesIO())
        assert await admin.scrub(relay.data_dir) == 2
        assert len(rows(relay, "SELECT 1 FROM audit_log WHERE action = 'item.damaged'")) == 1  # marked once

        # A damaged delivery rendition is refused to its recipient too.
        delivery = rows(relay, "SELECT delivery_blob_id FROM items WHERE id = ?", (intact["id"],))[0][0]
        _flip_a_byte(ctx.blobs.path(delivery))
        await scrub.scrub(ctx)
        with pytest.raises(ProblemError) as rendition:
            await offender.fetch(intact["id"], io.BytesIO())
        assert rendition.value.type == "content-damaged"
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_the_background_scrub_finds_damage_on_its_own(relay_with: Any) -> None:
    relay = await relay_with(scrub_interval_seconds=0.2, scrub_duty=0.5)
    world = await build_world(relay.url, relay.codes[0], kdf=TEST_KDF)
    victim = await world.session(world.victim)
    ctx = relay.server.app[CONTEXT]
    try:
        sent = await victim.send(case_id=world.case_id, recipient="mediators", src=letter(b"to the mediators"))
        blob_id = rows(relay, "SELECT blob_id FROM items WHERE id = ?", (sent["id"],))[0]["blob_id"]
        path = ctx.blobs.path(blob_id)
        path.write_bytes(path.read_bytes()[:-1])  # truncated
        for _ in range(50):
            await asyncio.sleep(0.1)
            if rows(relay, "SELECT damaged_part FROM items WHERE id = ?", (sent["id"],))[0][0]:
                break
        assert rows(relay, "SELECT damaged_part FROM items WHERE id = ?", (sent["id"],))[0][0] == "original"
    finally:
        await victim.close()
