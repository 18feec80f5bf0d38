"""No-contact conditions and approvals through the real relay, at submit, release and fetch."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest

from relay.client.scenario import World
from relay.client.sdk import ProblemError
from relay.clock import stamp

from .conftest import Relay, close, everyone


def order(world: World, relay: Relay, *, exception: bool = False, **changes: Any) -> dict[str, Any]:
    """A court non-communication order: the offender may not contact the victim (nor the reverse)."""
    return {"kind": "court_order", "reference": "ONCJ 2024-1187", "restricted_id": world.offender.person_id,
            "protected_people": [world.victim.person_id], "direction": "both",
            "effective_from": stamp(relay.clock.now() - timedelta(days=1)), "program_exception": exception,
            **changes}


async def test_a_condition_added_after_release_holds_the_fetch_and_lifting_it_releases_the_hold(
        relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"hi"))
        await mediator.release(sent["id"])
        condition = await coordinator.call("POST", "/v1/conditions", json_body=order(world, relay))

        assert await offender.call("GET", "/v1/inbox") == []
        with pytest.raises(ProblemError) as held:
            await offender.fetch(sent["id"], io.BytesIO())
        assert held.value.status == 404
        queue = await mediator.call("GET", "/v1/review/queue")
        assert [(q["id"], q["state"], q["hold_code"]) for q in queue] == [
            (sent["id"], "held", "condition-requires-approval")]
        assert queue[0]["screening"]["rule"].startswith(f"condition-{condition['id']}")
        mine = (await victim.call("GET", "/v1/items/sent"))[0]
        assert mine["status"] == {"en": "On hold for now. Your mediator will be in touch.",
                                  "fr": "En attente pour le moment. Votre médiateur communiquera avec vous."}
        assert "ONCJ" not in str(mine) and "condition" not in str(mine)

        lifted = await coordinator.call("POST", f"/v1/conditions/{condition['id']}/lift")
        assert lifted["items_released_from_hold"] == 1
        got = io.BytesIO()
        await offender.fetch(sent["id"], got)
        assert got.getvalue() == b"hi"
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_a_covered_letter_is_referred_and_released_only_after_the_national_unit_approves(
        relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        condition = await coordinator.call("POST", "/v1/conditions", json_body=order(world, relay))
        sent = await offender.send(case_id=world.case_id, recipient=world.victim.person_id, src=io.BytesIO(b"sorry"))
        assert sent["state"] == "pending_review"
        assert sent["status"]["en"] == "Waiting for your mediator's review"  # neutral: no word of the order
        queue = await mediator.call("GET", "/v1/review/queue")
        assert queue[0]["awaiting_approval"] is True
        with pytest.raises(ProblemError) as refused:
            await mediator.release(sent["id"])
        assert refused.value.problem["code"] == "condition-requires-approval"

        # An approval for the other direction or another kind does not help.
        await coordinator.call("POST", "/v1/approvals", json_body={
            "case_id": world.case_id, "condition_id": condition["id"], "directions": ["to_restricted"],
            "kinds": ["letter"], "valid_until": stamp(relay.clock.now() + timedelta(days=30))})
        with pytest.raises(ProblemError):
            await mediator.release(sent["id"])

        await coordinator.call("POST", "/v1/approvals", json_body={
            "case_id": world.case_id, "condition_id": condition["id"], "directions": ["from_restricted"],
            "kinds": ["letter"], "valid_until": stamp(relay.clock.now() + timedelta(days=30))})
        assert (await mediator.call("GET", "/v1/review/queue"))[0]["awaiting_approval"] is False
        await mediator.release(sent["id"])
        got = io.BytesIO()
        await victim.fetch(sent["id"], got)
        assert got.getvalue() == b"sorry"
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_an_approvals_expiry_takes_effect_without_a_restart(relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        condition = await coordinator.call("POST", "/v1/conditions", json_body=order(world, relay))
        approval = await coordinator.call("POST", "/v1/approvals", json_body={
            "case_id": world.case_id, "condition_id": condition["id"], "directions": ["from_restricted",
                                                                                       "to_restricted"],
            "kinds": ["letter"], "valid_until": stamp(relay.clock.now() + timedelta(hours=1))})
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"x"))
        await mediator.release(sent["id"])
        assert [i["id"] for i in await offender.call("GET", "/v1/inbox")] == [sent["id"]]

        relay.clock.advance(hours=1, seconds=1)
        offender_again = await world.session(world.offender, on_terminal=True)  # the old session is idle now
        try:
            assert await offender_again.call("GET", "/v1/inbox") == []
        finally:
            await offender_again.close()
        held = await world.session(world.mediator)
        try:
            assert (await held.call("GET", "/v1/review/queue"))[0]["state"] == "held"
        finally:
            await held.close()
        assert approval["valid_until"]
    finally:
        for client in (coordinator, victim, mediator, offender):
            client.session_token = None
        await close(coordinator, victim, mediator, offender)


async def test_the_programs_exception_wording_lets_mediated_letters_through(relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        await coordinator.call("POST", "/v1/conditions", json_body=order(world, relay, exception=True,
                                                                          kind="parole_condition"))
        sent = await offender.send(case_id=world.case_id, recipient=world.victim.person_id, src=io.BytesIO(b"ok"))
        await mediator.release(sent["id"])
        await victim.fetch(sent["id"], io.BytesIO())
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_writing_to_the_mediator_is_never_a_breach(relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        await coordinator.call("POST", "/v1/conditions", json_body=order(world, relay))
        to_mediator = await offender.send(case_id=world.case_id, recipient="mediators", src=io.BytesIO(b"hello"))
        assert to_mediator["state"] == "released"
        from_mediator = await mediator.send(case_id=world.case_id, recipient=world.offender.person_id,
                                            src=io.BytesIO(b"noted"))
        await offender.fetch(from_mediator["id"], io.BytesIO())
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_conditions_are_amended_and_lifted_never_silently_edited(relay: Relay, world: World) -> None:
    coordinator = await world.session(world.coordinator)
    try:
        condition = await coordinator.call("POST", "/v1/conditions", json_body=order(world, relay))
        await coordinator.call("POST", f"/v1/conditions/{condition['id']}/amend",
                               json_body={"program_exception": True})
        await coordinator.call("POST", f"/v1/conditions/{condition['id']}/lift")
        shown = await coordinator.call("GET", f"/v1/conditions/{condition['id']}")
        assert [(v["version"], v["change"]) for v in shown["history"]] == [(1, "added"), (2, "amended"), (3, "lifted")]
        assert shown["history"][0]["snapshot"]["program_exception"] is False
        with pytest.raises(ProblemError) as again:
            await coordinator.call("POST", f"/v1/conditions/{condition['id']}/amend", json_body={"reference": "x"})
        assert again.value.status == 409
        for bad in ({"effective_until": "2020-01-01T00:00:00Z"}, {"protected_people": []},
                    {"protected_case_id": world.case_id}, {"restricted_id": world.mediator.person_id}):
            with pytest.raises(ProblemError) as refused:
                await coordinator.call("POST", "/v1/conditions", json_body={**order(world, relay), **bad})
            assert refused.value.status in (404, 422)
    finally:
        await coordinator.close()


async def test_a_condition_protecting_a_whole_side_of_a_case(relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        body = order(world, relay, protected_people=[], protected_case_id=world.case_id, protected_side="victim",
                     direction="from_restricted")
        await coordinator.call("POST", "/v1/conditions", json_body=body)
        sent = await offender.send(case_id=world.case_id, recipient=world.victim.person_id, src=io.BytesIO(b"x"))
        assert (await mediator.call("GET", "/v1/review/queue"))[0]["awaiting_approval"] is True
        # The condition restricts only the offender's letters: the victim's still go through review.
        other = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"y"))
        await mediator.release(other["id"])
        assert sent["id"] != other["id"]
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_resuming_a_paused_case_releases_what_the_pause_held(relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"x"))
        await mediator.release(sent["id"])
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/status", json_body={"status": "paused"})
        assert await offender.call("GET", "/v1/inbox") == []
        resumed = await coordinator.call("POST", f"/v1/cases/{world.case_id}/status", json_body={"status": "open"})
        assert resumed["items_released_from_hold"] == 1
        assert [i["id"] for i in await offender.call("GET", "/v1/inbox")] == [sent["id"]]
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_program_exception_must_be_a_json_boolean(relay: Relay, world: World) -> None:
    """Found by the schema fuzz: `program_exception: 0` was read as false (pydantic's lax bool) and
    amended a condition. Whether the program may facilitate contact under a no-contact condition
    is never inferred from a number or a word: anything but true or false is refused, and the
    condition is left as it was."""
    coordinator = await world.session(world.coordinator)
    try:
        for stray in (1, 0, "yes", "false", "1"):
            with pytest.raises(ProblemError) as refused:
                await coordinator.call("POST", "/v1/conditions", json_body=order(world, relay, program_exception=stray))
            assert refused.value.status == 422
        assert await coordinator.call("GET", "/v1/conditions") == []
        condition = await coordinator.call("POST", "/v1/conditions", json_body=order(world, relay, exception=True))
        for stray in (0, "no", "false"):
            with pytest.raises(ProblemError) as refused:
                await coordinator.call("POST", f"/v1/conditions/{condition['id']}/amend",
                                       json_body={"program_exception": stray})
            assert refused.value.status == 422
        kept = await coordinator.call("GET", f"/v1/conditions/{condition['id']}")
        assert kept["program_exception"] is True and kept["version"] == 1
    finally:
        await coordinator.close()
