"""Regressions for what the attack run (checks/attack/attack.py) found: each failed before its fix."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import multidict
import pytest

import relay.client.sdk.transfer as transfer
from relay.client.scenario import World
from relay.client.sdk import Client, ProblemError
from relay.envelope import Identity
from relay.server.app import create_app
from relay.server.serving import running
from relay.server.settings import Settings
from relay.wire import DEVICE_HEADER
from tests.conftest import Relay, close, everyone

MARKER = "ZQXMARKER"


async def _identify(http: aiohttp.ClientSession, relay: Relay, terminal: str, code: str) -> int:
    async with http.post(relay.url + "/v1/kiosk/identify", json={"code": code},
                         headers={DEVICE_HEADER: terminal}) as response:
        await response.read()
        return response.status


async def test_kiosk_codes_typed_all_at_once_are_limited_like_codes_typed_one_by_one(
        relay: Relay, world: World) -> None:
    # Ten wrong codes a terminal a quarter of an hour. The count was read before the code was
    # looked up and written after: a burst all read "room left", and every code of it was tried.
    wrong = [f"2222-{n:04d}".replace("0", "2").replace("1", "3") for n in range(60)]
    async with aiohttp.ClientSession() as http:
        statuses: list[Any] = await asyncio.gather(*(_identify(http, relay, world.terminal_token, c) for c in wrong))
        assert sorted(set(statuses)) == [404, 429]
        assert statuses.count(404) == 10
        # Once the window has passed, a right code is not counted as a wrong one.
        relay.clock.advance(minutes=16)
        for _ in range(9):
            assert await _identify(http, relay, world.terminal_token, "2222-2222") == 404
        assert await _identify(http, relay, world.terminal_token, str(world.offender.kiosk_code)) == 200
        assert await _identify(http, relay, world.terminal_token, "2222-2222") == 404
        assert await _identify(http, relay, world.terminal_token, str(world.offender.kiosk_code)) == 429


async def test_an_expectation_the_relay_does_not_know_gets_a_problem_that_quotes_nothing(tmp_path: Path) -> None:
    # aiohttp answers an Expect other than 100-continue before any middleware runs, as
    # "417 text/plain: Unknown Expect: <the header as sent>".
    settings = Settings(data_dir=tmp_path / "relay-data")
    app = create_app(settings, bootstrap_printer=lambda _: None)
    async with running(app, settings, host="127.0.0.1", port=0) as (host, port):
        for path in ("/v1/me", "/v1/limits", "/no/such/route"):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: relay\r\nExpect: quote-me-{MARKER}\r\n"
                         "Connection: close\r\n\r\n".encode())
            answer = await reader.read()
            writer.close()
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 417 "), head
            assert b"Content-Type: application/problem+json" in head and b"Cache-Control: no-store" in head
            assert MARKER.encode() not in answer
            problem = json.loads(body)
            assert problem["type"] == "urn:mediation-relay:problem:expectation-failed"
            assert f"X-Request-Id: {problem['request_id']}".encode() in head
        # 100-continue still works.
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://{host}:{port}/v1/limits", headers={"Expect": "100-continue"}) as response:
                assert response.status == 200


async def test_a_credential_header_sent_twice_is_no_credential(relay: Relay, world: World) -> None:
    # Two X-Relay-Device (or two Authorization) headers: the relay acted for the first of each.
    victim = await world.session(world.victim)
    mediator = await world.session(world.mediator)
    try:
        v, m = victim._headers(), mediator._headers()
        async with aiohttp.ClientSession() as http:
            for headers, problem in (
                    ([(DEVICE_HEADER, v[DEVICE_HEADER]), (DEVICE_HEADER, m[DEVICE_HEADER]),
                      ("Authorization", v["Authorization"])], "unauthenticated"),
                    ([(DEVICE_HEADER, v[DEVICE_HEADER]), ("Authorization", v["Authorization"]),
                      ("Authorization", m["Authorization"])], "session-required"),
                    ([(DEVICE_HEADER, v[DEVICE_HEADER]), (DEVICE_HEADER, v[DEVICE_HEADER]),
                      ("Authorization", v["Authorization"])], "unauthenticated")):
                async with http.get(relay.url + "/v1/me", headers=multidict.CIMultiDict(headers)) as response:
                    assert response.status == 401
                    assert (await response.json(content_type=None))["type"].endswith(":" + problem)
            async with http.get(relay.url + "/v1/me", headers=v) as response:  # once each: served
                assert response.status == 200
    finally:
        await victim.close()
        await mediator.close()


async def _second_mediator(world: World, coordinator: Client) -> Client:
    identity = Identity.generate()
    person = await coordinator.enroll(public=identity.public, label="Second mediator", role="mediator")
    device = await coordinator.call("POST", "/v1/devices", json_body={
        "kind": "mediator_desk", "person_id": person["id"], "label": "second desk"})
    await coordinator.call("POST", f"/v1/cases/{world.case_id}/mediators", json_body={"person_id": person["id"]})
    client = await world.client(device["device_token"]).__aenter__()
    await client.login(person["id"], identity)
    return client


def _stall_uploads(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """The SDK's uploads send their first chunk, set ``started``, and wait for ``go`` to send the rest."""
    started, go = asyncio.Event(), asyncio.Event()
    chunks = transfer._file_chunks

    async def stalled(handle: Any, total: int, progress: Any) -> Any:
        async for chunk in chunks(handle, total, progress):
            yield chunk
            started.set()
            await go.wait()

    monkeypatch.setattr(transfer, "_file_chunks", stalled)
    return started, go


@pytest.mark.parametrize("ended_by", ["desk revoked", "mediator revoked", "sign-out"])
async def test_a_release_still_arriving_when_the_mediators_credentials_end_is_refused(
        relay: Relay, world: World, monkeypatch: pytest.MonkeyPatch, ended_by: str) -> None:
    # The guard checks the device and session when the headers arrive; the decision is written
    # once its rendition has arrived, which for a video can be minutes later. A release whose
    # body was still arriving when the coordinator revoked the desk (204) was written after it,
    # and delivered.
    coordinator, victim, mediator, offender = await everyone(world)
    other = await _second_mediator(world, coordinator)  # so the case still has an active mediator
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                 src=io.BytesIO(b"a letter " * 20_000))
        started, go = _stall_uploads(monkeypatch)
        release = asyncio.create_task(mediator.release(sent["id"]))
        await started.wait()
        await asyncio.sleep(0.1)  # the relay has the first chunk: the guard has passed
        headers = mediator._headers()
        if ended_by == "desk revoked":
            await coordinator.call("POST", f"/v1/devices/{str(world.mediator.device_token).split('.')[0]}/revoke")
        elif ended_by == "mediator revoked":
            await coordinator.call("POST", f"/v1/people/{world.mediator.person_id}/revoke")
        else:
            async with aiohttp.ClientSession() as http, http.delete(relay.url + "/v1/auth/session",
                                                                    headers=headers) as answer:
                assert answer.status == 204
        go.set()
        with pytest.raises(ProblemError) as refused:
            await release
        assert refused.value.status == 401
        assert [i["state"] for i in await coordinator.call("GET", f"/v1/cases/{world.case_id}/items")
                if i["id"] == sent["id"]] == ["pending_review"]
        assert await offender.call("GET", "/v1/inbox") == []
        # Nothing of the rendition stays behind.
        stored = {p.name for p in (relay.data_dir / "blobs" / "objects").rglob("*") if p.is_file()}
        assert len(stored) == 1  # the letter itself
        # The other mediator can still decide it.
        assert (await other.release(sent["id"]))["state"] == "released"
    finally:
        mediator.session_token = None
        await close(coordinator, victim, mediator, offender, other)


async def test_a_mediators_own_message_still_arriving_when_their_desk_is_revoked_is_refused(
        relay: Relay, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        started, go = _stall_uploads(monkeypatch)
        sending = asyncio.create_task(mediator.send(case_id=world.case_id, recipient=world.offender.person_id,
                                                    src=io.BytesIO(b"from the mediator " * 10_000)))
        await started.wait()
        await asyncio.sleep(0.1)
        await coordinator.call("POST", f"/v1/devices/{str(world.mediator.device_token).split('.')[0]}/revoke")
        go.set()
        with pytest.raises(ProblemError) as refused:
            await sending
        assert refused.value.status == 401
        assert await coordinator.call("GET", f"/v1/cases/{world.case_id}/items") == []
        assert await offender.call("GET", "/v1/inbox") == []
    finally:
        mediator.session_token = None
        await close(coordinator, victim, mediator, offender)


@pytest.mark.parametrize("ended_by", ["device revoked", "sign-out"])
async def test_a_tus_patch_still_arriving_when_its_senders_session_ends_is_not_acknowledged(
        relay: Relay, world: World, ended_by: str) -> None:
    # A PATCH's guard passed when its headers arrived; its bytes kept coming after the sender's
    # device was revoked (or they signed out), and were acknowledged (204) and kept.
    coordinator, victim = await world.session(world.coordinator), await world.session(world.victim)
    headers = {**victim._headers(), "Tus-Resumable": "1.0.0"}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(relay.url + "/v1/uploads", headers={**headers, "Upload-Length": "200000"}) as made:
                assert made.status == 201
                path = made.headers["Location"]
            started, go = asyncio.Event(), asyncio.Event()

            async def body() -> Any:
                yield b"a" * 65536
                started.set()
                await go.wait()
                yield b"b" * 65536

            patch = asyncio.create_task(http.patch(relay.url + path, data=body(), headers={
                **headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}))
            await started.wait()
            await asyncio.sleep(0.1)  # the guard has passed
            if ended_by == "device revoked":
                await coordinator.call("POST", f"/v1/devices/{victim._device_id()}/revoke")
            else:
                async with http.delete(relay.url + "/v1/auth/session", headers=victim._headers()) as answer:
                    assert answer.status == 204
            go.set()
            answer = await patch
            assert answer.status == 401
            answer.release()
        stored = relay.data_dir / "blobs" / "uploads" / f"{path.rsplit('/', 1)[1]}.part"
        assert not stored.exists() or stored.stat().st_size == 0  # nothing past the acknowledged offset
        with sqlite3.connect(f"file:{relay.data_dir / 'relay.sqlite3'}?mode=ro", uri=True) as db:
            assert db.execute("SELECT offset FROM uploads").fetchall() == [(0,)]  # not acknowledged
    finally:
        victim.session_token = None
        await close(coordinator, victim)
