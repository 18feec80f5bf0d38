"""Promise 5: bad input gets a clear RFC 9457 problem with a stable type, and changes nothing."""

from __future__ import annotations

import io
import sqlite3
import warnings
from typing import Any

import aiohttp
import pytest
from aiohttp import BodyPartReader
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from relay import envelope, ids
from relay.client.scenario import World
from relay.client.sdk import Client, ProblemError
from relay.clock import stamp
from relay.server import bodies

from .conftest import Relay

DOMAIN_TABLES = ("institutions", "people", "devices", "cases", "case_participants", "case_mediators", "items")


def snapshot(relay: Relay) -> tuple[Any, ...]:
    conn = sqlite3.connect(f"file:{relay.data_dir / 'relay.sqlite3'}?mode=ro", uri=True)
    try:
        tables = tuple(tuple(conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()) for t in DOMAIN_TABLES)
    finally:
        conn.close()
    blobs = tuple(sorted(str(p) for p in (relay.data_dir / "blobs").rglob("*") if p.is_file()))
    return tables, blobs


async def raw(client: Client, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    assert client._http is not None
    headers = {**client._headers(), **kwargs.pop("headers", {})}
    async with client._http.request(method, client.url + path, headers=headers, **kwargs) as response:
        return response.status, await response.json(content_type=None), dict(response.headers)


def sealed_letter(world: World, *, tamper: str | None = None) -> tuple[dict[str, Any], bytes]:
    key = envelope.new_content_key()
    blob = envelope.encrypt_bytes(key, b"a letter")
    readers = (world.mediator, world.victim)
    manifest = envelope.item_manifest(
        item_id=ids.new("item"), case_id=world.case_id, kind="letter", sender=world.victim.person_id,
        recipient=world.offender.person_id, created_at="2026-11-21T12:00:00Z", content_type="text/plain",
        size=len(blob), hash=envelope.blob_hash(blob),
        keys={r.person_id: envelope.seal_key(key, r.identity.public.box_pk) for r in readers})
    signature = envelope.sign(envelope.Domain.MANIFEST, manifest, world.victim.identity.signing_key)
    if tamper == "bit-flip":
        blob = blob[:40] + bytes([blob[40] ^ 1]) + blob[41:]
    elif tamper == "truncate":
        blob = blob[:-1]
    elif tamper == "signature":
        manifest = {**manifest, "content_type": "text/html"}
    return {"manifest": manifest, "signature": signature}, blob


def form(meta: dict[str, Any] | bytes, blob: bytes | None) -> aiohttp.MultipartWriter:
    writer = aiohttp.MultipartWriter("form-data")
    part = writer.append(meta) if isinstance(meta, bytes) else writer.append_json(meta)
    part.set_content_disposition("form-data", name="meta")
    if blob is not None:
        writer.append(blob).set_content_disposition("form-data", name="content")
    return writer


@pytest.fixture
async def victim(world: World) -> Client:
    client = await world.session(world.victim)
    yield client
    await client.close()


async def test_malformed_json_wrong_types_unknown_fields_and_oversize(relay: Relay, world: World, victim: Client) -> None:
    coordinator = await world.session(world.coordinator)
    try:
        before = snapshot(relay)
        cases = [
            (b"{not json", 400, "malformed-request"),
            (b'{"name": 42}', 422, "invalid-field"),
            (b'{"name": "B", "extra": true}', 422, "invalid-field"),
            (b'[]', 422, "invalid-field"),
            (b'{"name": "' + b"x" * 300_000 + b'"}', 413, "body-too-large"),
        ]
        for body, status, slug in cases:
            got, problem, headers = await raw(coordinator, "POST", "/v1/institutions", data=body,
                                              headers={"Content-Type": "application/json"})
            assert (got, problem["type"]) == (status, f"urn:mediation-relay:problem:{slug}"), body[:40]
            assert headers["Content-Type"].startswith("application/problem+json")
            assert problem["title"] and problem["status"] == status
        invalid = (await raw(coordinator, "POST", "/v1/institutions", json={"name": 42}))[1]
        assert invalid["errors"][0]["field"] == "name"
        assert snapshot(relay) == before
    finally:
        await coordinator.close()


@pytest.mark.parametrize("tamper,status,slug", [
    ("bit-flip", 422, "content-mismatch"),
    ("truncate", 422, "content-mismatch"),
    ("signature", 422, "signature-invalid"),
])
async def test_tampered_uploads_are_refused_and_leave_nothing(
        relay: Relay, world: World, victim: Client, tamper: str, status: int, slug: str) -> None:
    before = snapshot(relay)
    meta, blob = sealed_letter(world, tamper=tamper)
    with pytest.raises(ProblemError) as refused:
        await victim.call("POST", "/v1/items", data=form(meta, blob))
    assert (refused.value.status, refused.value.type) == (status, slug)
    assert snapshot(relay) == before
    assert list((relay.data_dir / "blobs" / "tmp").iterdir()) == []


@pytest.mark.parametrize("shape", ["not-multipart", "no-content", "meta-not-json", "manifest-missing-field",
                                   "another-sender", "kind-changed-after-signing"])
async def test_malformed_uploads_change_nothing(relay: Relay, world: World, victim: Client, shape: str) -> None:
    before = snapshot(relay)
    meta, blob = sealed_letter(world)
    if shape == "not-multipart":
        data: Any = blob
    elif shape == "no-content":
        data = form(meta, None)
    elif shape == "meta-not-json":
        data = form(b"{{{", blob)
    elif shape == "kind-changed-after-signing":
        data = form({**meta, "manifest": {**meta["manifest"], "kind": "video"}}, blob)
    elif shape == "manifest-missing-field":
        data = form({**meta, "manifest": {k: v for k, v in meta["manifest"].items() if k != "hash"}}, blob)
    else:
        data = form({**meta, "manifest": {**meta["manifest"], "sender": world.offender.person_id}}, blob)
    with pytest.raises(ProblemError) as refused:
        await victim.call("POST", "/v1/items", data=data)
    assert 400 <= refused.value.status < 500
    assert refused.value.problem["type"].startswith("urn:mediation-relay:problem:")
    assert snapshot(relay) == before


@pytest.mark.parametrize("meta_disposition, content_disposition", [
    ('form-data; name="metadata"', 'form-data; name="content"'),
    ('form-data; filename="x; name=meta"', 'form-data; name="content"'),  # a name only inside a quoted filename
    ('form-data; name="meta"', 'form-data; name="meta"'),
    ('form-data; name="meta"', 'form-data; filename="name=content"'),
    ('form-data; name="meta"', 'form-data; name="content"; name="other"'),  # said twice: aiohttp takes neither
])
async def test_parts_are_told_apart_by_their_name_alone(relay: Relay, world: World, victim: Client,
                                                         meta_disposition: str, content_disposition: str) -> None:
    """The part names are read once per distinct header value and remembered (aiohttp's parser
    is slow): the same answers as aiohttp's own ``part.name``, and nothing is stored."""
    before = snapshot(relay)
    meta, blob = sealed_letter(world)
    writer = aiohttp.MultipartWriter("form-data")
    writer.append_json(meta).headers["Content-Disposition"] = meta_disposition
    writer.append(blob).headers["Content-Disposition"] = content_disposition
    with pytest.raises(ProblemError) as refused:
        await victim.call("POST", "/v1/items", data=writer)
    assert refused.value.type == "malformed-request"
    assert snapshot(relay) == before
    # The same letter with the right names, right after (the remembered names do not leak over):
    assert (await victim.call("POST", "/v1/items", data=form(meta, blob)))["id"]


_DISPOSITION_ATOMS = st.sampled_from([
    "form-data", "attachment", ";", " ", "\t", "=", '"', "\\", "'", "*", ",", "%6D", "x", "\u00e9",
    "name", "NAME", "name*", "name*0", "name*1", "filename", "meta", "content", "utf-8''", "UTF-8''meta"])
_PARAMETER = st.tuples(
    st.sampled_from(["name", "Name", "name*", "name*0", "name*1", "name*0*", "name*2", "filename", "filename*"]),
    st.sampled_from(["meta", "content", "me", "ta", "con", "tent", "utf-8''meta", "utf-8''%6Deta", "latin-1''meta",
                     "", "meta;x", "x; name=meta", "z" * 190]),  # the last: past the remembered length
    st.booleans()).map(lambda p: f'{p[0]}="{p[1]}"' if p[2] else f"{p[0]}={p[1]}")
_DISPOSITION = st.one_of(
    st.lists(_DISPOSITION_ATOMS, max_size=25).map("".join),  # anything, mostly malformed
    st.tuples(st.sampled_from(["form-data", "attachment", "inline", "FORM-DATA", ""]),
              st.lists(_PARAMETER, max_size=4)).map(lambda d: "; ".join([d[0], *d[1]])))


@settings(max_examples=3000, deadline=None)
@given(st.lists(_DISPOSITION, min_size=1, max_size=2))
def test_a_parts_remembered_name_is_aiohttps_own(values: list[str]) -> None:
    """``bodies.part_name`` answers what aiohttp's ``part.name`` answers for any Content-Disposition
    (quoted, escaped, RFC 2231 extended or continued, malformed, repeated, sent twice), the first
    time and when remembered: the relay never takes a part for ``meta`` or ``content`` that
    aiohttp would not, nor the reverse, whatever aiohttp's parser becomes."""
    headers: CIMultiDict[str] = CIMultiDict()
    for value in values:
        headers.add("Content-Disposition", value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # aiohttp warns on malformed values (the relay ignores them)
        for _ in range(2):
            part = BodyPartReader(b"b", CIMultiDictProxy(headers), None)  # type: ignore[arg-type]
            assert bodies.part_name(part) == part.name, values


async def test_a_decision_that_does_not_match_the_item_is_refused(relay: Relay, world: World, victim: Client) -> None:
    sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"hello"))
    mediator = await world.session(world.mediator)
    try:
        before = snapshot(relay)
        doc = envelope.decision_manifest(
            item_id=sent["id"], case_id=world.case_id, manifest_hash="0" * 64, decision="withhold",
            sender={"id": world.victim.person_id, "fingerprint": world.victim.identity.public.fingerprint()},
            mediator=world.mediator.person_id, decided_at=stamp(relay.clock.now()),
            recipient=world.offender.person_id, delivery=None, reason="not-ready")
        meta = {"decision": doc, "signature": envelope.sign(envelope.Domain.DECISION, doc,
                                                            world.mediator.identity.signing_key)}
        with pytest.raises(ProblemError) as refused:
            await mediator.call("POST", f"/v1/items/{sent['id']}/decision", data=form(meta, None))
        assert refused.value.type == "signature-invalid"
        # Signed by someone else (the victim's key) over the right document:
        manifest = (await mediator.call("GET", f"/v1/items/{sent['id']}"))["manifest"]
        good = {**doc, "manifest_hash": envelope.digest(manifest)}
        forged = {"decision": good, "signature": envelope.sign(envelope.Domain.DECISION, good,
                                                               world.victim.identity.signing_key)}
        with pytest.raises(ProblemError) as refused:
            await mediator.call("POST", f"/v1/items/{sent['id']}/decision", data=form(forged, None))
        assert refused.value.type == "signature-invalid"
        assert snapshot(relay) == before
    finally:
        await mediator.close()


async def test_an_expired_or_idle_session_gets_a_problem_and_changes_nothing(relay: Relay, world: World,
                                                                            victim: Client) -> None:
    relay.clock.advance(seconds=15 * 60 + 1)  # past the idle limit
    before = snapshot(relay)
    with pytest.raises(ProblemError) as refused:
        await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"late"))
    assert (refused.value.status, refused.value.type) == (401, "session-required")
    assert snapshot(relay) == before


async def test_problems_speak_french_when_asked(world: World) -> None:
    async with world.client("dev_0000000000000000.nope", lang="fr") as client:
        status, problem, headers = await raw(client, "GET", "/v1/me")
    assert status == 401 and headers["Content-Language"] == "fr"
    assert problem["title"].startswith("Cet appareil n'est pas approuvé")


async def test_unknown_routes_and_methods_are_problems_too(world: World) -> None:
    async with world.client(str(world.victim.device_token)) as client:
        for method, path in (("GET", "/v1/nothing-here"), ("PATCH", "/v1/items/sent")):
            status, problem, _ = await raw(client, method, path)
            assert status == 404 and problem["type"] == "urn:mediation-relay:problem:not-found"
