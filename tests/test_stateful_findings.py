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

from relay.client.scenario import World

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
