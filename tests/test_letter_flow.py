"""A letter's whole path through a real relay: seal, review, release, terminal delivery, receipt."""

from __future__ import annotations

import asyncio
import io

import pytest

from relay.client.scenario import World
from relay.client.sdk import ProblemError

LETTER = "I have thought about that night every day since.\nI want you to know what it changed.\n".encode()


async def test_victim_letter_released_with_redaction_reaches_offender_terminal(world: World) -> None:
    victim = await world.session(world.victim)
    mediator = await world.session(world.mediator)
    offender = await world.session(world.offender, on_terminal=True)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(LETTER))
        assert sent["state"] == "pending_review"
        assert sent["status"]["fr"].startswith("En attente")

        # Nothing unreleased is listed or served to the recipient.
        assert await offender.call("GET", "/v1/inbox") == []
        with pytest.raises(ProblemError) as refused:
            await offender.call("GET", f"/v1/items/{sent['id']}/delivery")
        assert refused.value.status == 404

        queue = await mediator.call("GET", "/v1/review/queue")
        assert [q["id"] for q in queue] == [sent["id"]]
        assert queue[0]["age_seconds"] >= 0

        opened = io.BytesIO()
        await mediator.open_item(sent["id"], opened)
        assert opened.getvalue() == LETTER

        redacted = LETTER.replace(b"that night", b"[removed by mediator]")
        released = await mediator.release(sent["id"], rendition=io.BytesIO(redacted))
        assert released["state"] == "released"
        assert await mediator.call("GET", "/v1/review/queue") == []

        inbox = await offender.call("GET", "/v1/inbox")
        assert [i["id"] for i in inbox] == [sent["id"]]
        received = io.BytesIO()
        view = await offender.fetch(sent["id"], received)
        assert received.getvalue() == redacted
        assert view["state"] == "delivered"

        mine = await victim.call("GET", "/v1/items/sent")
        assert mine[0]["state"] == "delivered" and mine[0]["first_opened_at"]
        case_items = await mediator.call("GET", f"/v1/cases/{world.case_id}/items")
        assert case_items[0]["first_opened_at"] == mine[0]["first_opened_at"]
    finally:
        for client in (victim, mediator, offender):
            await client.close()


async def test_release_as_written_delivers_the_original_text(world: World) -> None:
    victim, mediator = await world.session(world.victim), await world.session(world.mediator)
    offender = await world.session(world.offender, on_terminal=True)
    try:
        sent = await offender.send(case_id=world.case_id, recipient=world.victim.person_id, src=io.BytesIO(LETTER))
        await mediator.release(sent["id"])
        got = io.BytesIO()
        await victim.fetch(sent["id"], got)
        assert got.getvalue() == LETTER
    finally:
        for client in (victim, mediator, offender):
            await client.close()


async def test_return_to_sender_carries_a_sealed_note(world: World) -> None:
    victim, mediator = await world.session(world.victim), await world.session(world.mediator)
    offender = await world.session(world.offender, on_terminal=True)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(LETTER))
        result = await mediator.return_to_sender(sent["id"], "Could we talk about the second paragraph first?")
        assert result["state"] == "returned"
        mine = (await victim.call("GET", "/v1/items/sent"))[0]
        assert mine["state"] == "returned" and mine["note_available"]
        assert "reason_code" not in mine and "hold_code" not in mine
        note = io.BytesIO()
        await victim.read_note(sent["id"], note)
        assert note.getvalue() == b"Could we talk about the second paragraph first?"
        assert await offender.call("GET", "/v1/inbox") == []
    finally:
        for client in (victim, mediator, offender):
            await client.close()


async def test_withhold_records_a_reason_code_the_sender_does_not_see(world: World) -> None:
    victim, mediator = await world.session(world.victim), await world.session(world.mediator)
    offender = await world.session(world.offender, on_terminal=True)
    try:
        sent = await offender.send(case_id=world.case_id, recipient=world.victim.person_id, src=io.BytesIO(LETTER))
        decided = await mediator.withhold(sent["id"], "not-ready")
        assert decided["state"] == "withheld" and decided["reason_code"] == "not-ready"
        mine = (await offender.call("GET", "/v1/items/sent"))[0]
        assert mine["state"] == "withheld" and "reason_code" not in mine
        assert mine["status"]["en"].startswith("Not passed on")
        assert await victim.call("GET", "/v1/inbox") == []
        with pytest.raises(ProblemError) as again:
            await mediator.release(sent["id"])
        assert again.value.status == 409
    finally:
        for client in (victim, mediator, offender):
            await client.close()


async def test_letter_to_the_mediator_arrives_without_review(world: World) -> None:
    victim, mediator = await world.session(world.victim), await world.session(world.mediator)
    try:
        sent = await victim.send(case_id=world.case_id, recipient="mediators", src=io.BytesIO(b"Can we meet?"))
        assert sent["to_mediators"] and sent["state"] == "released"
        # Nobody released it: the sender is told it was sent to the mediators, in both languages.
        assert sent["status"] == {"en": "Sent to your mediators", "fr": "Envoyé à vos médiateurs"}
        assert await mediator.call("GET", "/v1/review/queue") == []
        inbox = await mediator.call("GET", "/v1/review/inbox")
        assert [i["id"] for i in inbox] == [sent["id"]]
        text = io.BytesIO()
        await mediator.open_item(sent["id"], text)
        assert text.getvalue() == b"Can we meet?"
        read = await mediator.call("POST", f"/v1/items/{sent['id']}/read")
        assert read["state"] == "delivered"
        [listed] = [i for i in await victim.call("GET", "/v1/items/sent") if i["id"] == sent["id"]]
        assert listed["status"]["en"] == "Sent to your mediators"
    finally:
        await victim.close()
        await mediator.close()


async def test_mediator_writes_to_a_participant_without_review(world: World) -> None:
    mediator = await world.session(world.mediator)
    offender = await world.session(world.offender, on_terminal=True)
    try:
        sent = await mediator.send(case_id=world.case_id, recipient=world.offender.person_id,
                                   src=io.BytesIO(b"The victim has written to you."))
        assert sent["state"] == "released"
        got = io.BytesIO()
        await offender.fetch(sent["id"], got)
        assert got.getvalue() == b"The victim has written to you."
    finally:
        await mediator.close()
        await offender.close()


async def test_participant_cannot_seal_the_key_to_the_recipient(world: World) -> None:
    """Review is cryptographic: a manifest that gives the recipient a key is refused."""
    from relay import envelope, ids
    from relay.clock import stamp

    victim = await world.session(world.victim)
    try:
        key = envelope.new_content_key()
        blob = envelope.encrypt_bytes(key, LETTER)
        readers = [world.mediator, world.victim, world.offender]
        manifest = envelope.item_manifest(
            item_id=ids.new("item"), case_id=world.case_id, kind="letter", sender=world.victim.person_id,
            recipient=world.offender.person_id, created_at=stamp(victim.clock.now()),
            content_type="text/plain", size=len(blob), hash=envelope.blob_hash(blob),
            keys={r.person_id: envelope.seal_key(key, r.identity.public.box_pk) for r in readers})
        import aiohttp

        with aiohttp.MultipartWriter("form-data") as form:
            form.append_json({"manifest": manifest, "signature": envelope.sign(
                envelope.Domain.MANIFEST, manifest, world.victim.identity.signing_key)}
            ).set_content_disposition("form-data", name="meta")
            form.append(blob).set_content_disposition("form-data", name="content")
            with pytest.raises(ProblemError) as refused:
                await victim.call("POST", "/v1/items", data=form)
        assert refused.value.status == 422 and refused.value.type == "invalid-field"
        assert await victim.call("GET", "/v1/items/sent") == []
    finally:
        await victim.close()


async def test_many_openings_at_once_in_one_process_all_finish(world: World) -> None:
    """Each opening decrypts on a thread of its own: when openings held the loop's few pool
    threads (cores + 4) and each needed one more to wait on its full queue, a dozen concurrent
    fetches of a large letter waited on each other forever."""
    victim, mediator = await world.session(world.victim), await world.session(world.mediator)
    offender = await world.session(world.offender, on_terminal=True)
    try:
        letter = b"a long letter " * 700_000  # ~10 MB: more than the opener's queue holds at once
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(letter))
        await mediator.release(sent["id"])
        outs = [io.BytesIO() for _ in range(12)]
        async with asyncio.timeout(120):
            await asyncio.gather(*(offender.fetch(sent["id"], out) for out in outs))
        assert all(out.getvalue() == letter for out in outs)
    finally:
        for client in (victim, mediator, offender):
            await client.close()
