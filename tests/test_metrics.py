"""GET /metrics: what an operator's Prometheus sees after a whole exchange, to whom it is shown,
and that no label names a person, a case, an item or a device."""

from __future__ import annotations

import io
import re
from pathlib import Path

import aiohttp
import pytest

from relay.client.kdf import TEST_KDF
from relay.client.scenario import build_world
from relay.client.sdk import ProblemError
from relay.server.app import create_app
from relay.server.settings import Settings
from tests.conftest import MovableClock

TOKEN = "metrics-token-for-the-test-0123456789"
# Every id the relay issues has a prefix and 16 hex digits; tokens and hashes are long hex or base64.
IDENTIFIER = re.compile(r"(per|cas|itm|dev|ins|upl|ses|cnd|apr)_[0-9a-f]{8,}|[0-9a-f]{24,}|[A-Za-z0-9_-]{32,}")


def samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


async def test_metrics_after_a_whole_exchange_name_no_one(tmp_path: Path, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    codes: list[str] = []
    app = create_app(Settings(data_dir=tmp_path / "data", metrics_token=TOKEN), clock=MovableClock(),
                     bootstrap_printer=codes.append)
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    world = await build_world(url, codes[0], kdf=TEST_KDF)
    victim, mediator = await world.session(world.victim), await world.session(world.mediator)
    offender = await world.session(world.offender, on_terminal=True)
    try:
        letter = b"A letter for the metrics test.\n"
        first = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(letter))
        await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(letter))
        await mediator.release(first["id"])
        await offender.fetch(first["id"], io.BytesIO())
        with pytest.raises(ProblemError):  # a refused sign-in: the victim's key for the mediator
            client = world.client(str(world.mediator.device_token))
            async with client:
                await client.login(world.mediator.person_id, world.victim.identity)
    finally:
        for c in (victim, mediator, offender):
            await c.close()

    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-Relay-Device": str(world.terminal_token)}):
            async with http.get(url + "/metrics", headers=headers) as refused:
                assert refused.status == 404  # as if there were no such route
        async with http.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200 and response.content_type == "text/plain"
            text = await response.text()

    got = samples(text)
    assert got['relay_items{state="delivered"}'] == 1 and got['relay_items{state="pending_review"}'] == 1
    assert got["relay_review_queue_depth"] == 1 and got["relay_review_queue_oldest_age_seconds"] >= 0
    assert got["relay_failed_sign_ins_total"] >= 1
    assert got["relay_upload_bytes_total"] > 2 * len(letter)  # the sealed letters, as sent
    assert got["relay_disk_free_bytes"] > 0
    assert got['relay_http_request_duration_seconds_count{method="POST",route="/v1/items",status_class="2xx"}'] == 2
    assert got['relay_http_request_duration_seconds_count{method="POST",route="/v1/auth/session",status_class="4xx"}'] == 1
    assert any('route="/v1/items/{item_id}/delivery"' in k for k in got)
    assert 'relay_rate_limit_refusals_total' in got

    # No label value (nor anything else in the exposition) is an identifier.
    labels = re.findall(r'="([^"]*)"', text)
    assert labels and not [v for v in labels if IDENTIFIER.search(v)]
    for secret in (world.case_id, world.victim.person_id, world.offender.person_id, first["id"], TOKEN,
                   str(world.terminal_token).split(".")[0]):
        assert secret not in text
