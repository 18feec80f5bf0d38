"""Prometheus metrics: what operators need to see, from a real relay after a real exchange, with
no identifier of a person, case or item in any label; readable only from loopback or with the
metrics token."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from relay.client.scenario import World
from relay.client.sdk import ProblemError
from relay.server.app import create_app
from relay.server.settings import Settings

from .conftest import Relay

IDENTIFIER = re.compile(r"\b(?:per|cas|itm|dev|cnd|apr|upl|ins|ses)_[0-9a-f]{8,}")


async def test_metrics_show_the_relay_at_work_and_no_identifier(relay: Relay, world: World) -> None:
    victim = await world.session(world.victim)
    try:
        await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"Hello.\n"))
        await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"x" * 9_000_000),
                          resumable=True)
    finally:
        await victim.close()
    stranger = world.client(str(world.victim.device_token))
    async with stranger:  # a sign-in with a signature that is not the person's
        challenge = await stranger.call("POST", "/v1/auth/challenge", json_body={"person_id": world.victim.person_id})
        try:
            await stranger.call("POST", "/v1/auth/session", json_body={
                "challenge_id": challenge["challenge_id"], "signature": base64.b64encode(bytes(64)).decode()})
            raise AssertionError("a forged signature signed in")
        except ProblemError as refused:
            assert refused.type == "login-refused"
    async with aiohttp.ClientSession() as http:
        async with http.get(relay.url + "/metrics") as answer:
            assert answer.status == 200 and answer.content_type == "text/plain"
            text = await answer.text()
    assert 'relay_items{state="pending_review"} 2.0' in text
    assert "relay_review_queue_depth 2.0" in text
    assert re.search(r"relay_review_queue_oldest_seconds [0-9.e+]+", text)
    assert re.search(r'relay_request_seconds_count\{route="/v1/items",status="2xx"\} [1-9]', text)
    assert re.search(r'relay_request_seconds_count\{route="/v1/uploads/\{upload_id\}",status="2xx"\} [1-9]', text)
    assert re.search(r"relay_upload_bytes_total ([0-9.e+]+)", text)
    assert float(re.search(r"relay_upload_bytes_total ([0-9.e+]+)", text).group(1)) >= 9_000_000  # type: ignore[union-attr]
    assert re.search(r"relay_failed_sign_ins_total [1-9]", text)
    assert re.search(r'relay_problems_total\{type="login-refused"\} [1-9]', text)
    assert "relay_disk_free_bytes" in text and "relay_purged_items" in text
    commits = float(re.search(r"relay_db_commits_total ([0-9.e+]+)", text).group(1))  # type: ignore[union-attr]
    writes = float(re.search(r"relay_db_writes_total ([0-9.e+]+)", text).group(1))  # type: ignore[union-attr]
    assert 1 <= commits <= writes
    assert not IDENTIFIER.search(text), IDENTIFIER.search(text)


async def test_metrics_are_refused_through_a_proxy_and_need_the_token_when_one_is_set(
        tmp_path: Path, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    open_relay = await aiohttp_server(create_app(Settings(data_dir=tmp_path / "a"), bootstrap_printer=lambda _: None))
    token = "m" * 32
    closed: TestServer = await aiohttp_server(create_app(Settings(data_dir=tmp_path / "b", metrics_token=token),
                                                         bootstrap_printer=lambda _: None))
    async with aiohttp.ClientSession() as http:
        async with http.get(open_relay.make_url("/metrics"), headers={"X-Forwarded-For": "203.0.113.9"}) as proxied:
            assert proxied.status == 403 and proxied.content_type == "application/problem+json"
        async with http.get(closed.make_url("/metrics")) as anonymous:
            assert anonymous.status == 403
        async with http.get(closed.make_url("/metrics"), headers={"Authorization": "Bearer " + "n" * 32}) as wrong:
            assert wrong.status == 403
        async with http.get(closed.make_url("/metrics"), headers={"Authorization": "Bearer " + token}) as right:
            assert right.status == 200 and "relay_items" in await right.text()
