"""Envelope version 2 through a real relay: version 1 documents and blobs are refused with their
own problem, and a release names the item's sender, which the relay checks and the recipient's
client verifies and returns (issue 10 item 25)."""

from __future__ import annotations

import io
import json
import sqlite3
from typing import Any

import pytest

from relay import envelope, ids
from relay.client.scenario import World
from relay.client.sdk import Client, ProblemError, VerificationError
from relay.clock import stamp
from relay.envelope import Domain

from .conftest import Relay
from .test_bad_input import form, snapshot


@pytest.fixture
async def victim(world: World) -> Client:
    client = await world.session(world.victim)
    yield client
    await client.close()


def _letter(world: World, *, version: int = 2, magic: bytes = envelope.MAGIC) -> tuple[dict[str, Any], bytes]:
    """A letter from the victim to the offender; ``version`` and ``magic`` as a retired client
    would have made them (signed the v1 way when ``version`` is 1)."""
    key = envelope.new_content_key()
    blob = magic + envelope.encrypt_bytes(key, b"a letter")[len(magic):]
    manifest = envelope.item_manifest(
        item_id=ids.new("item"), case_id=world.case_id, kind="letter", sender=world.victim.person_id,
        recipient=world.offender.person_id, created_at="2026-11-21T12:00:00Z", content_type="text/plain",
        size=len(blob), hash=envelope.blob_hash(blob),
        keys={r.person_id: envelope.seal_key(key, r.identity.public.box_pk) for r in (world.mediator, world.victim)})
    signing_key = world.victim.identity.signing_key
    if version == 1:
        manifest = {**manifest, "v": 1}
        message = b"mediation-relay/v1/manifest\x00" + envelope.canonical_json(manifest)
        signature = envelope.b64e(signing_key.sign(message).signature)
    else:
        signature = envelope.sign(Domain.MANIFEST, manifest, signing_key)
    return {"manifest": manifest, "signature": signature}, blob


@pytest.mark.parametrize("retired", ["document", "blob"])
async def test_version_1_is_refused_with_its_own_problem_and_changes_nothing(
        relay: Relay, world: World, victim: Client, retired: str) -> None:
    before = snapshot(relay)
    meta, blob = _letter(world, version=1) if retired == "document" else _letter(world, magic=b"RLY\x01")
    with pytest.raises(ProblemError) as refused:
        await victim.call("POST", "/v1/items", data=form(meta, blob))
    assert (refused.value.status, refused.value.type) == (422, "envelope-version-unsupported")
    assert refused.value.problem["field"] == ("manifest" if retired == "document" else "content")
    assert "version 1" in refused.value.problem["title"]
    assert snapshot(relay) == before
    assert list((relay.data_dir / "blobs" / "tmp").iterdir()) == []


async def test_a_version_1_blob_sent_resumably_is_refused_too(relay: Relay, world: World, victim: Client) -> None:
    meta, blob = _letter(world, magic=b"RLY\x01")
    path = f"/v1/uploads/{await victim.create_upload(len(blob))}"
    await victim._raw("PATCH", path, data=blob, headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "0",
                                                          "Content-Type": "application/offset+octet-stream"})
    before = snapshot(relay)
    with pytest.raises(ProblemError) as refused:
        await victim._upload("/v1/items", {**meta, "upload_id": path.rsplit("/", 1)[1]}, None, None)
    assert refused.value.type == "envelope-version-unsupported"
    assert snapshot(relay) == before


async def test_the_recipient_learns_the_sender_from_the_mediators_release(world: World, victim: Client) -> None:
    mediator = await world.session(world.mediator)
    offender = await world.session(world.offender, on_terminal=True)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"hello"))
        await mediator.release(sent["id"])
        got = await offender.fetch(sent["id"], io.BytesIO())
        assert got["sender"] == {"id": world.victim.person_id, "fingerprint": world.victim.identity.public.fingerprint(),
                                 "role": "participant", "side": "victim"}
        decision = (await offender.call("GET", f"/v1/items/{sent['id']}/delivery"))["decision"]
        assert decision["sender"] == {"id": world.victim.person_id,
                                      "fingerprint": world.victim.identity.public.fingerprint()}
    finally:
        for client in (mediator, offender):
            await client.close()


@pytest.mark.parametrize("wrong", ["id", "fingerprint"])
async def test_the_relay_refuses_a_release_that_names_another_sender(
        relay: Relay, world: World, victim: Client, wrong: str) -> None:
    sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"hello"))
    mediator = await world.session(world.mediator)
    try:
        manifest = (await mediator.call("GET", f"/v1/items/{sent['id']}"))["manifest"]
        sender = {"id": world.victim.person_id, "fingerprint": world.victim.identity.public.fingerprint()}
        # Someone enrolled, but not who wrote it: their id, or the victim's id with their keys.
        other = world.offender
        sender |= {"id": other.person_id} if wrong == "id" else {"fingerprint": other.identity.public.fingerprint()}
        doc = envelope.decision_manifest(
            item_id=sent["id"], case_id=world.case_id, manifest_hash=envelope.digest(manifest), sender=sender,
            decision="withhold", mediator=world.mediator.person_id, decided_at=stamp(relay.clock.now()),
            recipient=world.offender.person_id, delivery=None, reason="not-ready")
        meta = {"decision": doc, "signature": envelope.sign(Domain.DECISION, doc, world.mediator.identity.signing_key)}
        before = snapshot(relay)
        with pytest.raises(ProblemError) as refused:
            await mediator.call("POST", f"/v1/items/{sent['id']}/decision", data=form(meta, None))
        assert refused.value.type == "signature-invalid"
        assert snapshot(relay) == before
    finally:
        await mediator.close()


async def test_the_recipients_client_refuses_a_release_whose_sender_does_not_match_the_enrollment(
        relay: Relay, world: World, victim: Client) -> None:
    """A relay that stored (with a mediator who signed it) a release naming the sender with keys
    that are not theirs: the recipient's client checks the fingerprint along the enrollment chain
    and shows nothing."""
    mediator = await world.session(world.mediator)
    offender = await world.session(world.offender, on_terminal=True)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"hello"))
        await mediator.release(sent["id"])
        db = sqlite3.connect(relay.data_dir / "relay.sqlite3")
        try:
            (stored,) = db.execute("SELECT decision_doc FROM items WHERE id = ?", (sent["id"],)).fetchone()
            forged = {**json.loads(stored), "sender": {"id": world.victim.person_id,
                                                      "fingerprint": world.mediator.identity.public.fingerprint()}}
            signature = envelope.sign(Domain.DECISION, forged, world.mediator.identity.signing_key)
            db.execute("UPDATE items SET decision_doc = ?, decision_sig = ?, decision_hash = ? WHERE id = ?",
                       (envelope.canonical_json(forged).decode(), signature, envelope.digest(forged), sent["id"]))
            db.commit()
        finally:
            db.close()
        written = io.BytesIO()
        with pytest.raises(VerificationError):
            await offender.fetch(sent["id"], written)
        assert written.getvalue() == b""  # checked before any plaintext is written
    finally:
        for client in (mediator, offender):
            await client.close()
