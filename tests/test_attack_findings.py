"""Regressions for what the attack run (checks/attack/attack.py) found: each failed before its fix."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from relay.client.scenario import World
from relay.wire import DEVICE_HEADER
from tests.conftest import Relay


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
