"""Sequences the stateful proof (tests/test_stateful_lifecycle.py) found, each as a plain test.

The machine's failing sequence (700 cases of 50 steps, before the fix in ``storage/cases.py``):
a letter from the offender, released; the mediator pauses the case (the victim's next listing
holds it, code ``case-paused``); the victim's consent is withdrawn (which held only items in
``pending_review`` or ``released``, so this one kept its pause hold and its release); the case
resumes; consent returns (which sent back to review only items held for the withdrawal); the
victim's next listing cleared the pause hold and served the letter on the release made before
the withdrawal. The same cause, in a closed case: a withhold of an item the model had back in
review was refused as "already decided", since the old release still stood.
"""

from __future__ import annotations

import io

import pytest

import storage.cases as storage_cases
import storage.items as storage_items
from relay.client.scenario import World
from storage.rows import SYSTEM

from .conftest import close, everyone


async def test_a_release_held_for_a_pause_does_not_survive_a_withdrawal_of_consent(world: World) -> None:
    """A withdrawal takes back the release of every undelivered exchange, even one a pause had
    already held at a fetch: once consent returns it goes back to review, not to the recipient."""
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                 src=io.BytesIO(b"a letter"))
        await mediator.release(sent["id"])
        await mediator.call("POST", f"/v1/cases/{world.case_id}/pause",
                            json_body={"paused": True, "reason": "safety-assessment"})
        assert await offender.call("GET", "/v1/inbox") == []  # the fetch holds it for the pause
        consent = f"/v1/cases/{world.case_id}/participants/{world.offender.person_id}/consent"
        await coordinator.call("POST", consent, json_body={"consent": "withdrawn"})
        await coordinator.call("POST", consent, json_body={"consent": "given"})
        await mediator.call("POST", f"/v1/cases/{world.case_id}/pause",
                            json_body={"paused": False, "reason": "assessment-complete"})
        assert await offender.call("GET", "/v1/inbox") == []
        queue = await mediator.call("GET", "/v1/review/queue")
        assert [(i["id"], i["state"]) for i in queue] == [(sent["id"], "pending_review")]
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_a_release_held_for_a_condition_does_not_survive_a_withdrawal_of_consent(world: World) -> None:
    """The same with a no-contact condition instead of a pause: lifting it after consent came
    back must not deliver the release made before the withdrawal."""
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                 src=io.BytesIO(b"a letter"))
        await mediator.release(sent["id"])
        condition = await coordinator.call("POST", "/v1/conditions", json_body={
            "kind": "parole_condition", "reference": "P-1", "restricted_id": world.offender.person_id,
            "protected_people": [world.victim.person_id], "direction": "both",
            "effective_from": "2020-01-01T00:00:00Z", "program_exception": False})
        assert await offender.call("GET", "/v1/inbox") == []  # the fetch holds it for the condition
        consent = f"/v1/cases/{world.case_id}/participants/{world.offender.person_id}/consent"
        await coordinator.call("POST", consent, json_body={"consent": "withdrawn"})
        await coordinator.call("POST", consent, json_body={"consent": "given"})
        await coordinator.call("POST", f"/v1/conditions/{condition['id']}/lift")
        assert await offender.call("GET", "/v1/inbox") == []
        queue = await mediator.call("GET", "/v1/review/queue")
        assert [(i["id"], i["state"]) for i in queue] == [(sent["id"], "pending_review")]
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_clearing_a_lapsed_hold_loses_to_a_withdrawal_committed_meanwhile(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by review: whoever clears a lapsed hold (a resume, a lifted condition, a fetch) read
    the item first. If a withdrawal of consent commits between that read and the clearing write,
    the write must not put the item back to 'released' (undoing the withdrawal). The interleaving
    is forced by running the real withdrawal just before the real unhold, here at a resume."""
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                 src=io.BytesIO(b"a letter"))
        await mediator.release(sent["id"])
        pause = f"/v1/cases/{world.case_id}/pause"
        await mediator.call("POST", pause, json_body={"paused": True, "reason": "safety-assessment"})
        assert await offender.call("GET", "/v1/inbox") == []  # held for the pause
        real = storage_items.unhold
        raced = []

        async def withdrawal_first(db, **kwargs):  # type: ignore[no-untyped-def]
            await storage_cases.set_consent(db, case_id=world.case_id, person_id=world.offender.person_id,
                                            consent="withdrawn", now=kwargs["now"], actor=SYSTEM)
            raced.append(kwargs["item_id"])
            return await real(db, **kwargs)

        monkeypatch.setattr(storage_items, "unhold", withdrawal_first)
        await mediator.call("POST", pause, json_body={"paused": False, "reason": "assessment-complete"})
        monkeypatch.setattr(storage_items, "unhold", real)
        assert raced == [sent["id"]]
        # Still held for the withdrawal (no fetch in between to re-hold it), so the return of
        # consent sends it back to review instead of leaving the old release standing.
        [item] = [i for i in await mediator.call("GET", f"/v1/cases/{world.case_id}/items") if i["id"] == sent["id"]]
        assert (item["state"], item["hold_code"]) == ("held", "consent-withdrawn")
        consent = f"/v1/cases/{world.case_id}/participants/{world.offender.person_id}/consent"
        await coordinator.call("POST", consent, json_body={"consent": "given"})
        assert await offender.call("GET", "/v1/inbox") == []  # the old release did not come back
        queue = await mediator.call("GET", "/v1/review/queue")
        assert [(i["id"], i["state"]) for i in queue] == [(sent["id"], "pending_review")]
    finally:
        await close(coordinator, victim, mediator, offender)
