"""The interface's state: its profile, the bound browser, and the person unlocked now (if any)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from relay import envelope
from relay.client.profile import IDENTITY_FILE, Profile
from relay.client.sdk import Client, VerificationError
from relay.client.web.config import WebConfig
from relay.client.web.guard import Binding
from relay.client.web.person import Unlocked
from relay.envelope import Identity


class WrongPassphrase(Exception):
    """The passphrase does not open this key (or the code names nobody here)."""


@dataclass
class State:
    config: WebConfig
    profile: Profile
    binding: Binding
    port: int
    person: Unlocked | None = None
    scratch: Path | None = None
    locked_by_idle: bool = False
    unlocking: asyncio.Lock = field(default_factory=asyncio.Lock)  # one person at a time, never two

    async def lock(self) -> None:
        person, self.person = self.person, None
        if person is not None:
            with contextlib.suppress(Exception):  # the key is wiped even if the relay is unreachable
                await person.lock()

    async def check_idle(self) -> None:
        if (self.person is not None and self.config.kind != "kiosk"
                and any(job.state == "running" for job in self.person.jobs.values())):
            # A video being sent or released is the person's own work under way, not idleness
            # (signing out would stop it); the idle time counts from its end. Not at a shared kiosk.
            self.person.touch()
        if self.person is not None and self.person.idle_for() > self.config.idle:
            self.locked_by_idle = True
            await self.lock()

    async def watch_idle(self) -> None:
        """Wipe an idle key even when no request comes (a browser left open on a letter)."""
        while True:
            await asyncio.sleep(min(5.0, max(0.5, self.config.idle / 10)))
            await self.check_idle()

    def client(self) -> Client:
        """A new SDK client for this interface's relay and device (not signed in)."""
        p = self.profile
        return Client(p.url, p.device_token, trust_root=p.trust_root, lang=self.config.lang)

    async def unlock_own(self, passphrase: str) -> Unlocked:
        """The desk and the app: this device's own person, with the key sealed in the profile."""
        bundle = (self.config.profile_dir / IDENTITY_FILE).read_bytes()
        try:
            identity = self.config.kdf.open(bundle, passphrase)
        except envelope.EnvelopeError:
            raise WrongPassphrase() from None
        return await self._sign_in(str(self.profile.person_id), identity, None)

    async def unlock_at_kiosk(self, person_id: str, passphrase: str) -> Unlocked:
        """The kiosk: the person's passphrase-sealed bundle, fetched from the relay for this session."""
        client = await self.client().__aenter__()
        try:
            identity = await client.unlock_on_terminal(person_id, passphrase, **self.config.kdf.open_kwargs)
        except VerificationError:
            await client.close()
            raise WrongPassphrase() from None
        except BaseException:
            await client.close()
            raise
        return await self._sign_in(person_id, identity, client)

    async def _sign_in(self, person_id: str, identity: Identity, client: Client | None) -> Unlocked:
        async with self.unlocking:
            return await self._sign_in_alone(person_id, identity, client)

    async def _sign_in_alone(self, person_id: str, identity: Identity, client: Client | None) -> Unlocked:
        await self.lock()
        client = client or await self.client().__aenter__()
        try:
            await client.login(person_id, identity)
            me = await client.call("GET", "/v1/me")
        except BaseException:
            await client.close()
            raise
        self.person = Unlocked(client=client, person=me["person"], cases=me["cases"])
        self.locked_by_idle = False
        return self.person


CONFIG = web.AppKey("web_config", WebConfig)
STATE = web.AppKey("web_state", State)
