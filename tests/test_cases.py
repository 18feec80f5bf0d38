"""Case rules through the real relay: referrals, consent, pause and close, at submit, release and fetch."""

from __future__ import annotations

import io

import pytest

from relay.client.scenario import World
from relay.client.sdk import ProblemError

from .conftest import close, everyone


async def test_an_offenders_own_request_never_opens_a_case(world: World) -> None:
    coordinator = await world.session(world.coordinator)
    try:
        with pytest.raises(ProblemError) as refused:
            await coordinator.call("POST", "/v1/cases", json_body={"referral_source": "offender",
                                                                   "institution_id": world.institution_id})
        assert refused.value.type == "offender-request-not-accepted"
        assert "offender" in refused.value.problem["title"].lower()
        for source in ("victim", "institutional", "community"):
            await coordinator.call("POST", "/v1/cases", json_body={"referral_source": source,
                                                                   "institution_id": world.institution_id})
    finally:
        await coordinator.close()


async def test_a_withdrawal_takes_effect_at_once_and_a_return_sends_nothing_by_itself(world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        pending = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"one"))
        released = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"two"))
        await mediator.release(released["id"])

        result = await coordinator.call("POST", f"/v1/cases/{world.case_id}/participants/{world.offender.person_id}/"
                                                "consent", json_body={"consent": "withdrawn"})
        assert result["items_held"] == 2
        assert await offender.call("GET", "/v1/inbox") == []
        with pytest.raises(ProblemError):
            await offender.fetch(released["id"], io.BytesIO())
        with pytest.raises(ProblemError) as refused:
            await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"three"))
        assert refused.value.type == "screening-refused"
        assert "code" not in refused.value.problem  # the sender learns nothing about the other person
        queue = await mediator.call("GET", "/v1/review/queue")
        assert {(q["id"], q["state"], q["hold_code"]) for q in queue} == {
            (pending["id"], "held", "consent-withdrawn"), (released["id"], "held", "consent-withdrawn")}
        mine = {i["id"]: i for i in await victim.call("GET", "/v1/items/sent")}
        assert mine[pending["id"]]["status"]["en"].startswith("On hold") and "hold_code" not in mine[pending["id"]]

        back = await coordinator.call("POST", f"/v1/cases/{world.case_id}/participants/{world.offender.person_id}/"
                                              "consent", json_body={"consent": "given"})
        assert back["items_returned_to_review"] == 2
        assert await offender.call("GET", "/v1/inbox") == []  # nothing is delivered automatically
        queue = await mediator.call("GET", "/v1/review/queue")
        assert {(q["id"], q["state"]) for q in queue} == {(pending["id"], "pending_review"),
                                                           (released["id"], "pending_review")}
        await mediator.release(released["id"])  # the mediator decides again; then it can be delivered
        got = io.BytesIO()
        await offender.fetch(released["id"], got)
        assert got.getvalue() == b"two"
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_a_paused_case_delivers_nothing_between_participants_but_the_mediator_stays_reachable(
        world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"hi"))
        await mediator.release(sent["id"])
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/status", json_body={"status": "paused"})
        assert await offender.call("GET", "/v1/inbox") == []
        queue = await mediator.call("GET", "/v1/review/queue")
        assert queue[0]["state"] == "held" and queue[0]["hold_code"] == "case-paused"
        await victim.send(case_id=world.case_id, recipient="mediators", src=io.BytesIO(b"I need a break"))
        later = await victim.send(case_id=world.case_id, recipient="mediators", src=io.BytesIO(b"still here"))
        assert later["state"] == "released"
        with pytest.raises(ProblemError) as refused:
            await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"x"))
        assert refused.value.type == "screening-refused"
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_a_release_is_refused_when_screening_now_blocks_it(world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"hi"))
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/status", json_body={"status": "paused"})
        with pytest.raises(ProblemError) as refused:
            await mediator.release(sent["id"])
        assert refused.value.type == "screening-refused" and refused.value.problem["code"] == "case-paused"
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_a_closed_case_carries_nothing_and_stays_closed(world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/status", json_body={"status": "closed"})
        with pytest.raises(ProblemError):
            await victim.send(case_id=world.case_id, recipient="mediators", src=io.BytesIO(b"x"))
        with pytest.raises(ProblemError) as reopen:
            await coordinator.call("POST", f"/v1/cases/{world.case_id}/status", json_body={"status": "open"})
        assert reopen.value.status == 409
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_membership_rules(world: World) -> None:
    coordinator = await world.session(world.coordinator)
    try:
        case = await coordinator.call("POST", "/v1/cases", json_body={"referral_source": "community",
                                                                       "institution_id": world.institution_id})
        with pytest.raises(ProblemError) as wrong_role:
            await coordinator.call("POST", f"/v1/cases/{case['id']}/mediators",
                                   json_body={"person_id": world.victim.person_id})
        assert wrong_role.value.status == 409
        await coordinator.call("POST", f"/v1/cases/{case['id']}/participants",
                               json_body={"person_id": world.victim.person_id})
        with pytest.raises(ProblemError) as twice:
            await coordinator.call("POST", f"/v1/cases/{case['id']}/participants",
                                   json_body={"person_id": world.victim.person_id})
        assert twice.value.status == 409
    finally:
        await coordinator.close()
