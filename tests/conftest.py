"""Shared fixtures: a real relay on loopback with real SQLite and blob files in a temp dir."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest
from aiohttp.test_utils import TestServer

from relay.client.kdf import TEST_KDF
from relay.client.scenario import World, build_world
from relay.client.sdk import Client
from relay.server.app import create_app
from relay.server.settings import Settings


class MovableClock:
    """A real clock that tests can push forward (sessions expiring, challenges timing out)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **kwargs: float) -> None:
        self.offset += timedelta(**kwargs)


class Relay:
    def __init__(self, server: TestServer, data_dir: Path, clock: MovableClock, codes: list[str]) -> None:
        self.server = server
        self.data_dir = data_dir
        self.clock = clock
        self.codes = codes

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def relay(tmp_path: Path, aiohttp_server) -> AsyncIterator[Relay]:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "relay-data"
    clock = MovableClock()
    codes: list[str] = []
    app = create_app(Settings(data_dir=data_dir), clock=clock, bootstrap_printer=codes.append)
    server = await aiohttp_server(app)
    yield Relay(server, data_dir, clock, codes)


@pytest.fixture
async def world(relay: Relay) -> World:
    return await build_world(relay.url, relay.codes[0], kdf=TEST_KDF)


async def everyone(world: World) -> tuple[Client, Client, Client, Client]:
    """Signed-in clients: the coordinator, the victim (own device), the mediator, the offender (kiosk)."""
    return (await world.session(world.coordinator), await world.session(world.victim),
            await world.session(world.mediator), await world.session(world.offender, on_terminal=True))


async def close(*clients: Client) -> None:
    for client in clients:
        await client.close()


def add_institution(name: str):  # type: ignore[no-untyped-def]
    """A write task for the single writer: one institution row (the smallest write there is)."""
    async def run(conn: aiosqlite.Connection) -> None:
        await conn.execute("INSERT INTO institutions (id, name, created_at) VALUES (?, ?, 'now')", (name, name))

    return run
