"""Issue 10, hardening of the relay's input (items 11, 12, 13, 14, 18, 19, 20, 23, 24).

Each test drives a real relay on loopback: the app under aiohttp's test server for what the
application answers, and the relay's own server (``relay.server.serving.running``) for what
happens before the application sees a request (the HTTP parser, slow clients, the Server header).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import pty
import re
import stat
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relay import envelope, ids
from relay.client.demo import local_relay
from relay.client.kdf import TEST_KDF
from relay.client.scenario import World, build_world
from relay.client.sdk import Client, ProblemError
from relay.clock import stamp
from relay.server.app import create_app
from relay.server.serving import CODE_FILE, bootstrap_printer, running
from relay.server.settings import Settings

from .conftest import MovableClock, Relay, close, everyone
from .test_bad_input import form, sealed_letter, snapshot

PROBLEM = "application/problem+json"
PREFIX = "urn:mediation-relay:problem:"


async def send_raw(url: str, method: str, path: str, *, headers: dict[str, str] | None = None,
                   data: Any = None) -> tuple[int, dict[str, Any], Any]:
    async with aiohttp.ClientSession() as http, \
            http.request(method, url + path, headers=headers or {}, data=data) as response:
        body = await response.read()
        assert response.content_type == PROBLEM or response.status < 400, (response.status, body[:200])
        return response.status, json.loads(body) if body else {}, response.headers


def authed(client: Client, **extra: str) -> dict[str, str]:
    return {**client._headers(), **extra}


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# -- 11 and 24: JSON that is too deep or repeats a key ------------------------------------------


async def test_deeply_nested_json_is_a_400_everywhere_and_logs_no_traceback(
        relay: Relay, world: World, caplog: pytest.LogCaptureFixture) -> None:
    victim = await world.session(world.victim)
    coordinator = await world.session(world.coordinator)
    try:
        before = snapshot(relay)
        caplog.set_level(logging.DEBUG)
        for depth in (5000, 100_000, 33):
            status, problem, _ = await send_raw(relay.url, "POST", "/v1/bootstrap", data=nested(depth),
                                                headers={"Content-Type": "application/json"})
            assert (status, problem["type"]) == (400, PREFIX + "malformed-request")
            status, problem, _ = await send_raw(relay.url, "POST", "/v1/institutions", data=nested(depth),
                                                headers=authed(coordinator, **{"Content-Type": "application/json"}))
            assert (status, problem["type"]) == (400, PREFIX + "malformed-request")
        # Nested inside a field of an otherwise good body, and inside a multipart meta part.
        deep = b'{"name": ' + nested(5000) + b"}"
        status, problem, _ = await send_raw(relay.url, "POST", "/v1/institutions", data=deep,
                                            headers=authed(coordinator, **{"Content-Type": "application/json"}))
        assert (status, problem["type"]) == (400, PREFIX + "malformed-request")
        meta, blob = sealed_letter(world)
        status, problem, _ = await send_raw(relay.url, "POST", "/v1/items", headers=authed(victim),
                                            data=form(b'{"manifest": ' + nested(3000) + b"}", blob))
        assert (status, problem["type"]) == (400, PREFIX + "malformed-request")
        assert snapshot(relay) == before
        assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text
    finally:
        await close(victim, coordinator)


async def test_duplicate_keys_are_refused_in_bodies_signed_documents_and_meta_parts(relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"hi"))
        await mediator.release(sent["id"])
        view = await offender.call("GET", f"/v1/items/{sent['id']}/delivery")
        receipt = envelope.receipt(item_id=sent["id"], decision_hash=envelope.digest(view["decision"]),
                                   recipient=world.offender.person_id, opened_at=stamp(relay.clock.now()))
        signature = envelope.sign(envelope.Domain.RECEIPT, receipt, world.offender.identity.signing_key)
        good = json.dumps({"receipt": receipt, "signature": signature})
        # The receipt repeats "recipient": first someone else, then the signer (the value a naive
        # parser keeps, so the signature would verify).
        inner = json.dumps(receipt)[1:-1]
        repeated = ('{"receipt": {"recipient": "' + world.victim.person_id + '", ' + inner + '}, "signature": "'
                    + signature + '"}')
        before = snapshot(relay)
        for body in (repeated, good[:-1] + ', "signature": "' + signature + '"}'):
            status, problem, _ = await send_raw(relay.url, "POST", f"/v1/items/{sent['id']}/receipt", data=body,
                                                headers=authed(offender, **{"Content-Type": "application/json"}))
            assert (status, problem["type"]) == (400, PREFIX + "malformed-request")
            assert "repeats a key" in problem["detail"]
        assert snapshot(relay) == before
        # A plain body too, and JSON inside a multipart meta part.
        status, problem, _ = await send_raw(relay.url, "POST", "/v1/institutions", data='{"name": "A", "name": "B"}',
                                            headers=authed(coordinator, **{"Content-Type": "application/json"}))
        assert (status, problem["type"]) == (400, PREFIX + "malformed-request")
        meta, blob = sealed_letter(world)
        text = json.dumps(meta)
        doubled = text[:-1] + ', "signature": ' + json.dumps(meta["signature"]) + "}"
        status, problem, _ = await send_raw(relay.url, "POST", "/v1/items", headers=authed(victim),
                                            data=form(doubled.encode(), blob))
        assert (status, problem["type"]) == (400, PREFIX + "malformed-request")
        assert snapshot(relay) == before
        # The same receipt without the repeat is accepted.
        status, _, _ = await send_raw(relay.url, "POST", f"/v1/items/{sent['id']}/receipt", data=good,
                                      headers=authed(offender, **{"Content-Type": "application/json"}))
        assert status == 200
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_nan_and_infinity_are_not_json(relay: Relay, world: World) -> None:
    coordinator = await world.session(world.coordinator)
    try:
        for constant in ("NaN", "Infinity", "-Infinity"):
            status, problem, _ = await send_raw(
                relay.url, "POST", f"/v1/cases/{world.case_id}/retention",
                data='{"rule": "review_wait", "days": ' + constant + "}",
                headers=authed(coordinator, **{"Content-Type": "application/json"}))
            assert (status, problem["type"]) == (400, PREFIX + "malformed-request")
    finally:
        await coordinator.close()


# -- 12: malformed multipart, integer headers, dates that do not exist ---------------------------


def _multipart_bodies() -> list[tuple[str, str, bytes]]:
    """(name, Content-Type, body) of multipart uploads aiohttp's reader used to raise on."""
    boundary = "b" * 40
    meta = b'{"manifest": {}, "signature": "AAAA"}'
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"meta\"\r\n\r\n").encode() + meta + b"\r\n"
    many_headers = (f"--{boundary}\r\n".encode() + b"".join(b"X-H%d: v\r\n" % i for i in range(200))
                    + b'Content-Disposition: form-data; name="meta"\r\n\r\n' + meta + f"\r\n--{boundary}--\r\n".encode())
    return [
        ("no boundary", "multipart/form-data", part),
        ("empty boundary", "multipart/form-data; boundary=", part),
        ("empty body", f"multipart/form-data; boundary={boundary}", b""),
        ("boundary over 70", f"multipart/form-data; boundary={'x' * 71}", part.replace(b"b" * 40, b"x" * 71)),
        ("non-ascii boundary", "multipart/form-data; boundary=é", part),
        ("over 128 part headers", f"multipart/form-data; boundary={boundary}", many_headers),
        ("wrong first boundary", f"multipart/form-data; boundary={boundary}", b"--other\r\n\r\n"),
        ("mixed", f"multipart/mixed; boundary={boundary}", part),
        ("truncated", f"multipart/form-data; boundary={boundary}", part[:30]),
    ]


async def test_malformed_multipart_is_a_400_on_items_and_decisions(relay: Relay, world: World) -> None:
    victim = await world.session(world.victim)
    mediator = await world.session(world.mediator)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"x"))
        before = snapshot(relay)
        for who, path in ((victim, "/v1/items"), (mediator, f"/v1/items/{sent['id']}/decision")):
            for name, content_type, body in _multipart_bodies():
                status, problem, _ = await send_raw(relay.url, "POST", path, data=body,
                                                    headers=authed(who, **{"Content-Type": content_type}))
                assert status == 400 and problem["type"] == PREFIX + "malformed-request", (path, name, problem)
        assert snapshot(relay) == before
    finally:
        await close(victim, mediator)


@pytest.mark.parametrize("value", ["²", "٣", "１", "1" * 4301, "1" * 19, "-1", "+1", "1_000", "0x10", ""])
async def test_tus_integer_headers_take_ascii_digits_only(relay: Relay, world: World, value: str) -> None:
    victim = await world.session(world.victim)
    try:
        tus = {"Tus-Resumable": "1.0.0"}
        status, problem, _ = await send_raw(relay.url, "POST", "/v1/uploads",
                                            headers=authed(victim, **tus, **{"Upload-Length": value}))
        assert (status, problem["type"]) == (422, PREFIX + "invalid-field")
        upload_id = await victim.create_upload(10)
        status, problem, _ = await send_raw(
            relay.url, "PATCH", f"/v1/uploads/{upload_id}", data=b"0123456789",
            headers=authed(victim, **tus, **{"Upload-Offset": value, "Content-Type": "application/offset+octet-stream"}))
        assert (status, problem["type"]) == (422, PREFIX + "invalid-field")
    finally:
        await victim.close()


@pytest.mark.parametrize("moment", ["2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-04-31T12:00:00Z",
                                    "2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z", "2026-12-31T23:59:60Z",
                                    "2026-01-01T00:00:00.1234567Z", "2026-01-01T00:00:00+00:00",
                                    "٢٠٢٦-01-01T00:00:00Z", "2026-01-01T00:00:00.Z"])
async def test_dates_that_do_not_exist_are_422_on_conditions_amendments_and_approvals(
        relay: Relay, world: World, moment: str) -> None:
    coordinator = await world.session(world.coordinator)
    try:
        condition = await coordinator.call("POST", "/v1/conditions", json_body={
            "kind": "court_order", "reference": "R-1", "restricted_id": world.offender.person_id,
            "protected_people": [world.victim.person_id], "direction": "both",
            "effective_from": stamp(relay.clock.now() - timedelta(days=1)), "program_exception": False})
        before = snapshot(relay)
        attempts = [
            ("/v1/conditions", {"kind": "court_order", "reference": "R-2", "restricted_id": world.offender.person_id,
                                "direction": "both", "effective_from": moment, "program_exception": False}),
            ("/v1/conditions", {"kind": "court_order", "reference": "R-2", "restricted_id": world.offender.person_id,
                                "direction": "both", "effective_from": stamp(relay.clock.now()),
                                "effective_until": moment, "program_exception": False}),
            (f"/v1/conditions/{condition['id']}/amend", {"effective_until": moment}),
            (f"/v1/conditions/{condition['id']}/amend", {"effective_from": moment}),
            ("/v1/approvals", {"case_id": world.case_id, "condition_id": condition["id"],
                               "directions": ["from_restricted"], "kinds": ["letter"], "valid_until": moment}),
        ]
        for path, body in attempts:
            with pytest.raises(ProblemError) as refused:
                await coordinator.call("POST", path, json_body=body)
            assert (refused.value.status, refused.value.type) == (422, "invalid-field"), (path, refused.value.problem)
        assert snapshot(relay) == before
    finally:
        await coordinator.close()


# -- 23: the spec's own time grammar on the routes ----------------------------------------------


def spec_times() -> tuple[list[str], list[str]]:
    """Times built from docs/envelope-v2.md section 8's grammar: YYYY-MM-DDTHH:MM:SS, then
    optionally 1 to 6 fractional digits, then Z, naming a real date and time."""
    spec = (Path(__file__).parent.parent / "docs" / "envelope-v2.md").read_text("utf-8")
    assert "optionally 1–6\n  fractional-second digits" in spec, "the spec's time grammar changed: update this test"
    valid = ["2026-11-21T19:27:28Z"] + [f"2026-11-21T19:27:28.{'123456'[:n]}Z" for n in range(1, 7)]
    valid += ["2024-02-29T00:00:00Z", "2026-12-31T23:59:59.999999Z", "2026-01-01T00:00:00.0Z"]
    invalid = ["2026-11-21T19:27:28.1234567Z", "2026-11-21T19:27:28.Z", "2026-11-21T19:27:28",
               "2026-11-21T19:27:28+00:00", "2026-11-21 19:27:28Z", "2026-11-21t19:27:28z", "2025-02-29T00:00:00Z",
               "2026-11-21T19:27:28,5Z", "2026-11-21T19:27Z", "20261121T192728Z"]
    return valid, invalid


async def test_receipts_and_manifests_follow_the_spec_time_grammar(relay: Relay, world: World) -> None:
    valid, invalid = spec_times()
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"hi"))
        await mediator.release(sent["id"])
        view = await offender.call("GET", f"/v1/items/{sent['id']}/delivery")

        def receipt_body(opened_at: str) -> dict[str, Any]:
            doc = {"v": envelope.VERSION, "type": "receipt", "item_id": sent["id"], "decision_hash": envelope.digest(view["decision"]),
                   "recipient": world.offender.person_id, "opened_at": opened_at}
            # Signed directly (the signer's own check would refuse the invalid ones first).
            signature = envelope.b64e(world.offender.identity.signing_key.sign(
                envelope.Domain.RECEIPT.value + envelope.canonical_json(doc)).signature)
            return {"receipt": doc, "signature": signature}

        for moment in invalid:
            with pytest.raises(ProblemError) as refused:
                await offender.call("POST", f"/v1/items/{sent['id']}/receipt", json_body=receipt_body(moment))
            assert refused.value.status == 422, (moment, refused.value.problem)
        for moment in valid:
            answer = await offender.call("POST", f"/v1/items/{sent['id']}/receipt", json_body=receipt_body(moment))
            assert answer["state"] == "delivered", moment

        # A manifest's created_at, through the submission route.
        for moment, accepted in [(m, True) for m in valid[:3]] + [(m, False) for m in invalid[:3]]:
            meta, blob = sealed_letter(world)
            manifest = {**meta["manifest"], "created_at": moment}
            signature = envelope.b64e(world.victim.identity.signing_key.sign(
                envelope.Domain.MANIFEST.value + envelope.canonical_json(manifest)).signature)
            data = form({"manifest": manifest, "signature": signature}, blob)
            if accepted:
                assert (await victim.call("POST", "/v1/items", data=data))["state"] == "pending_review"
            else:
                with pytest.raises(ProblemError) as refused:
                    await victim.call("POST", "/v1/items", data=data)
                assert refused.value.status == 422, moment
    finally:
        await close(coordinator, victim, mediator, offender)


# -- 14: the open-upload limit under parallel creations -----------------------------------------


async def test_twenty_parallel_upload_creations_open_exactly_five(relay: Relay, world: World) -> None:
    victim = await world.session(world.victim)
    try:
        results = await asyncio.gather(*(victim.create_upload(100) for _ in range(20)), return_exceptions=True)
        created = [r for r in results if isinstance(r, str)]
        refused = [r for r in results if isinstance(r, ProblemError)]
        assert len(created) == 5 and len(refused) == 15, results
        assert {r.type for r in refused} == {"rate-limited"}
    finally:
        await victim.close()


# -- 18: another case's item id ------------------------------------------------------------------


async def test_reusing_another_case_item_id_is_404_like_every_read(relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        theirs = await offender.send(case_id=world.case_id, recipient=world.victim.person_id, src=io.BytesIO(b"a"))
        # A second case, in which the victim has no part but the offender... the victim sends in the
        # first case reusing the offender's item id: the victim may not read that item.
        with pytest.raises(ProblemError) as read:
            await victim.call("GET", f"/v1/items/{theirs['id']}")
        meta, blob = sealed_letter(world)
        manifest = {**meta["manifest"], "item_id": theirs["id"]}
        signature = envelope.sign(envelope.Domain.MANIFEST, manifest, world.victim.identity.signing_key)
        with pytest.raises(ProblemError) as reused:
            await victim.call("POST", "/v1/items", data=form({"manifest": manifest, "signature": signature}, blob))
        assert (reused.value.status, reused.value.type) == (read.value.status, read.value.type) == (404, "not-found")
        # Reusing one's own item id is a conflict one may be told about.
        mine = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"b"))
        manifest = {**meta["manifest"], "item_id": mine["id"]}
        signature = envelope.sign(envelope.Domain.MANIFEST, manifest, world.victim.identity.signing_key)
        with pytest.raises(ProblemError) as again:
            await victim.call("POST", "/v1/items", data=form({"manifest": manifest, "signature": signature}, blob))
        assert again.value.status == 409
        assert list((relay.data_dir / "blobs" / "tmp").iterdir()) == []
    finally:
        await close(coordinator, victim, mediator, offender)


# -- 13 and 19: what happens before the application sees a request ------------------------------


class Served:
    def __init__(self, url: str, host: str, port: int, data_dir: Path, codes: list[str]) -> None:
        self.url, self.host, self.port, self.data_dir, self.codes = url, host, port, data_dir, codes


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """The relay behind its own server (as `relay serve` runs it), with short timeouts."""
    settings = Settings(data_dir=tmp_path / "relay-data", header_timeout_seconds=1, body_idle_seconds=1)
    codes: list[str] = []
    app = create_app(settings, clock=MovableClock(), bootstrap_printer=codes.append)
    async with running(app, settings, host="127.0.0.1", port=0) as (host, port):
        yield Served(f"http://{host}:{port}", host, port, settings.data_dir, codes)


async def exchange(served: Served, raw: bytes, *, wait: float = 5) -> bytes:
    reader, writer = await asyncio.open_connection(served.host, served.port)
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(wait):
            return await reader.read()  # until the relay closes the connection
    finally:
        writer.close()


def split(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


async def test_oversized_and_too_many_headers_are_problems_that_echo_nothing_and_log_no_secret(
        served: Served, caplog: pytest.LogCaptureFixture) -> None:
    world = await build_world(served.url, served.codes[0], kdf=TEST_KDF)
    token = str(world.victim.device_token)
    caplog.set_level(logging.DEBUG)
    cases = [
        f"GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Relay-Device: {token}{'A' * 9000}\r\n\r\n",
        f"GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Relay-Device: {token}\r\n"
        + "".join(f"X-Pad-{i}: {token}\r\n" for i in range(200)) + "\r\n",
        f"GET /v1/me?{token}{'q' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /v1/me HTTP/1.1\r\nHost: x\r\nX-{token}{'n' * 9000}: v\r\n\r\n",
        f"BREW /v1/me HTTP/1.1\r\nHost: x\r\nX-Relay-Device: {token}\r\nContent-Length: nope\r\n\r\n",
    ]
    for raw in cases:
        status, headers, body = split(await exchange(served, raw.encode()))
        assert 400 <= status < 500, raw[:40]
        assert headers["content-type"] == PROBLEM + "; charset=utf-8"
        problem = json.loads(body)
        assert problem["type"].startswith(PREFIX) and problem["status"] == status
        assert token not in body.decode() and "AAAA" not in body.decode()
        assert headers.get("server") == "mediation-relay"
    assert token not in caplog.text and "127.0.0.1" not in caplog.text
    assert "AAAA" not in caplog.text and "Traceback" not in caplog.text
    status, _, body = split(await exchange(served, cases[0].encode()))
    assert (status, json.loads(body)["type"]) == (431, PREFIX + "headers-too-large")


async def test_server_header_names_no_version(served: Served) -> None:
    for method, path in (("GET", "/healthz"), ("GET", "/nothing"), ("POST", "/v1/bootstrap")):
        async with aiohttp.ClientSession() as http, http.request(method, served.url + path) as response:
            assert response.headers["Server"] == "mediation-relay"
            assert not re.search(r"\d", response.headers["Server"])


async def test_headers_that_never_finish_and_bodies_that_stall_are_cut_off(served: Served) -> None:
    loop = asyncio.get_running_loop()
    # Headers trickled in one byte at a time, never completed: closed after the header timeout
    # (1 s here), however long the trickle goes on.
    reader, writer = await asyncio.open_connection(served.host, served.port)
    started = loop.time()
    closed_after = None
    try:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            writer.write(bytes([byte]))
            try:
                await writer.drain()
            except ConnectionError:
                closed_after = loop.time() - started
                break
            await asyncio.sleep(0.05)
            if reader.at_eof():
                closed_after = loop.time() - started
                break
            try:
                if await asyncio.wait_for(reader.read(1), 0.001) == b"":
                    closed_after = loop.time() - started
                    break
            except TimeoutError:
                pass
    finally:
        writer.close()
    assert closed_after is not None and closed_after < 4, closed_after

    # A body that stops arriving: 408 problem, connection closed.
    body_start = (b"POST /v1/bootstrap HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{\"code\": ")
    started = loop.time()
    answer = await exchange(served, body_start, wait=6)
    status, headers, body = split(answer)
    assert (status, json.loads(body)["type"]) == (408, PREFIX + "request-timeout")
    assert headers["content-type"].startswith(PROBLEM) and headers.get("connection", "").lower() == "close"
    assert loop.time() - started < 5


async def test_file_responses_answer_ranges_and_preconditions_with_problems(relay: Relay, world: World) -> None:
    victim = await world.session(world.victim)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"hi"))
        path = f"/v1/items/{sent['id']}/content"
        for extra, status, slug in ((("Range", "bytes=100000-"), 416, "range-not-satisfiable"),
                                    (("Range", "bytes=5-2"), 416, "range-not-satisfiable"),
                                    (("If-Match", '"nope"'), 412, "precondition-failed")):
            got, problem, headers = await send_raw(relay.url, "GET", path, headers=authed(victim, **dict([extra])))
            assert (got, problem["type"]) == (status, PREFIX + slug)
            assert headers["Content-Type"] == PROBLEM + "; charset=utf-8" and problem["instance"] == path
        async with aiohttp.ClientSession() as http, \
                http.get(relay.url + path, headers=authed(victim, Range="bytes=0-9")) as response:
            assert response.status == 206 and len(await response.read()) == 10
    finally:
        await victim.close()


# -- 19: the first-start code reaches a terminal, never a log ------------------------------------


def test_first_start_code_goes_to_a_terminal_or_a_private_file_never_the_log(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings(data_dir=tmp_path)
    # An interactive start: a real terminal (a pseudo-terminal) gets the code; no file is written.
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            bootstrap_printer(settings, terminal=terminal)("bst_0123456789abcdef.secret-one")
        shown = os.read(leader, 4096).decode()
    finally:
        os.close(leader)
        os.close(follower)
    assert "bst_0123456789abcdef.secret-one" in shown and not (tmp_path / CODE_FILE).exists()
    # Not a terminal (a pipe, Docker's log, systemd): a 0600 file, and the log names only the file.
    with open(tmp_path / "stderr.txt", "w") as not_a_terminal:
        bootstrap_printer(settings, terminal=not_a_terminal)("bst_0123456789abcdef.secret-two")
    assert (tmp_path / "stderr.txt").read_text() == ""
    code_file = tmp_path / CODE_FILE
    assert code_file.read_text().strip() == "bst_0123456789abcdef.secret-two"
    assert stat.S_IMODE(code_file.stat().st_mode) == 0o600
    assert "secret" not in caplog.text and CODE_FILE in caplog.text


# -- 20: every file the relay creates is private ------------------------------------------------


async def test_relay_serve_creates_every_file_0600_and_removes_a_used_code_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "relay-data"
    previous = os.umask(0o022)  # the usual umask of whoever starts the relay: files would be 0644
    try:
        async with local_relay(data_dir) as running_relay:
            await _serve_and_check_modes(data_dir, running_relay)
    finally:
        os.umask(previous)


async def _serve_and_check_modes(data_dir: Path, running_relay: Any) -> None:
    assert running_relay.code and (data_dir / CODE_FILE).is_file()
    world = await build_world(running_relay.url, running_relay.code, kdf=TEST_KDF)
    assert not (data_dir / CODE_FILE).exists()  # used: gone
    victim = await world.session(world.victim)
    try:
        await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"x"))
    finally:
        await victim.close()
    names = {p.name for p in data_dir.iterdir()}
    assert {"relay.sqlite3", "relay.sqlite3-wal", "relay.sqlite3-shm"} <= names
    loose = {str(p.relative_to(data_dir)): oct(stat.S_IMODE(p.stat().st_mode)) for p in data_dir.rglob("*")
             if stat.S_IMODE(p.stat().st_mode) & 0o077}
    assert loose == {}


# -- 19: logs carry no request value -------------------------------------------------------------


async def test_an_unexpected_error_logs_its_type_and_place_but_no_value(
        tmp_path: Path, aiohttp_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(data_dir=tmp_path / "d"), bootstrap_printer=lambda code: None)

    async def fails(request: Any) -> Any:
        value = request.headers["X-Secret"]
        raise ValueError(f"could not use {value!r}")  # a message quoting what the request carried

    app.router.add_get("/boom/{anything}", fails)
    server = await aiohttp_server(app)
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as http, \
            http.get(str(server.make_url("/boom/path-value-7")), headers={"X-Secret": "tok_hunter2"}) as response:
        assert response.status == 500
        problem = await response.json(content_type=None)
    assert problem["type"] == PREFIX + "internal-error" and "hunter2" not in json.dumps(problem)
    assert "builtins.ValueError at test_hardening_input.py:" in caplog.text
    assert "/boom/{anything}" in caplog.text
    assert "hunter2" not in caplog.text and "path-value-7" not in caplog.text and "Traceback" not in caplog.text


async def test_the_access_log_names_the_route_not_the_path_or_the_address(
        served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    item = ids.new("item")
    async with aiohttp.ClientSession() as http, \
            http.get(f"{served.url}/v1/items/{item}?q=needle", headers={"User-Agent": "agent-needle"}) as response:
        assert response.status == 401
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert lines and "GET /v1/items/{item_id} 401" in lines[-1]
    assert item not in caplog.text and "needle" not in caplog.text and "127.0.0.1" not in caplog.text
