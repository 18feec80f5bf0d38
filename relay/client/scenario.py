"""A whole case set up through the client SDK, exactly as people would do it by hand.

Used by ``relay demo`` to show a newcomer the exchange, and by the tests and benchmarks so that
they exercise the same code a real console, desk, device and terminal run. Each person's keys
are generated "on their own endpoint" (here: in this process) and only public keys and, for
terminal users, a passphrase-sealed bundle reach the relay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp

from relay import envelope
from relay.client import passphrase
from relay.client.kdf import PRODUCTION_KDF, Kdf
from relay.client.sdk import Client, bootstrap
from relay.envelope import Identity


@dataclass
class Someone:
    label: str
    person_id: str
    identity: Identity
    device_token: str | None = None  # their own device (participant device, desk, console)
    passphrase: str | None = None  # terminal users: unlocks their bundle on a kiosk
    kiosk_code: str | None = None  # terminal users: identifies them at a kiosk (shown once)


@dataclass
class World:
    url: str
    trust_root: str
    coordinator: Someone
    mediator: Someone
    victim: Someone
    offender: Someone
    institution_id: str
    terminal_token: str
    case_id: str
    kdf: Kdf
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, device_token: str, http: aiohttp.ClientSession | None = None, lang: str = "en") -> Client:
        return Client(self.url, device_token, trust_root=self.trust_root, http=http, lang=lang)

    async def session(self, who: Someone, *, on_terminal: bool = False,
                      http: aiohttp.ClientSession | None = None) -> Client:
        """A logged-in client for ``who``: on their own device, or on the terminal with their passphrase."""
        client = await self.client(self.terminal_token if on_terminal else str(who.device_token), http).__aenter__()
        try:
            identity = who.identity
            if on_terminal:
                assert who.passphrase is not None
                identity = await client.unlock_on_terminal(who.person_id, who.passphrase, **self.kdf.open_kwargs)
            await client.login(who.person_id, identity)
        except BaseException:
            await client.close()
            raise
        return client


Step = Any  # a callable(str) that reports progress to a person


async def build_world(url: str, code: str, *, kdf: Kdf = PRODUCTION_KDF, say: Step = lambda _: None,
                      http: aiohttp.ClientSession | None = None) -> World:
    """From a fresh relay and its first enrollment code to an open case with a mediator."""
    coordinator_id = Identity.generate()
    boot = await bootstrap(url, code, coordinator_id, label="National unit coordinator",
                           device_label="National unit console", http=http)
    coordinator = Someone("coordinator", boot["person_id"], coordinator_id, boot["device_token"])
    say(f"coordinator enrolled with the first-start code; trust root {envelope.b64e(coordinator_id.public.sign_pk)[:12]}…")
    root = boot["trust_root"]

    console = await Client(url, coordinator.device_token, trust_root=root, http=http).__aenter__()
    try:
        await console.login(coordinator.person_id, coordinator_id)
        institution = await console.call("POST", "/v1/institutions", json_body={"name": "Institution A"})
        say(f"institution {institution['id']} added")

        async def enroll(label: str, role: str, relation: str | None, *, terminal_user: bool = False) -> Someone:
            identity = Identity.generate()
            secret = passphrase.generate() if terminal_user else None
            bundle = kdf.seal(identity, secret) if secret else None
            person = await console.enroll(public=identity.public, label=label, role=role, relation=relation,
                                          institution_id=institution["id"] if terminal_user else None,
                                          key_bundle=bundle)
            someone = Someone(label, person["id"], identity, passphrase=secret, kiosk_code=person.get("kiosk_code"))
            if not terminal_user:
                kind = {"mediator": "mediator_desk", "participant": "participant_device"}[role]
                device = await console.call("POST", "/v1/devices", json_body={
                    "kind": kind, "person_id": person["id"], "label": f"{label}'s {kind.replace('_', ' ')}"})
                someone.device_token = device["device_token"]
            say(f"{label} enrolled as {relation or role} ({person['id']})")
            return someone

        mediator = await enroll("Mediator", "mediator", None)
        victim = await enroll("Victim", "participant", "victim")
        offender = await enroll("Offender", "participant", "offender", terminal_user=True)
        terminal = await console.call("POST", "/v1/devices", json_body={
            "kind": "terminal", "institution_id": institution["id"], "label": "Institution A kiosk 1"})
        say(f"terminal {terminal['id']} approved at institution A")
        case = await console.call("POST", "/v1/cases", json_body={
            "referral_source": "victim", "institution_id": institution["id"]})
        for person in (victim, offender):
            await console.call("POST", f"/v1/cases/{case['id']}/participants", json_body={"person_id": person.person_id})
        await console.call("POST", f"/v1/cases/{case['id']}/mediators", json_body={"person_id": mediator.person_id})
        say(f"case {case['id']} opened on a victim referral; both participants added; mediator assigned")
    finally:
        await console.close()
    return World(url=url, trust_root=root, coordinator=coordinator, mediator=mediator, victim=victim,
                 offender=offender, institution_id=institution["id"], terminal_token=terminal["device_token"],
                 case_id=case["id"], kdf=kdf)
