"""Many cases at once, set up through the SDK as people would by hand (for bench/load.py and
bench/writes.py): one case per pair of participants at the world's institution, a victim on
their own device and an offender signed in on a kiosk terminal of their own, each case with one
of a few mediators."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp

from relay.client import passphrase
from relay.client.scenario import World
from relay.client.sdk import Client
from relay.envelope import Identity


@dataclass
class Case:
    id: str
    victim: Client  # on their own device
    offender: Client  # on a kiosk terminal
    desk: Client  # the case's mediator (shared with other cases)


@dataclass
class Population:
    cases: list[Case] = field(default_factory=list)
    desks: list[Client] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)  # every one signed in, to close at the end

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


async def populate(world: World, http: aiohttp.ClientSession, *, cases: int, mediators: int,
                   client: type[Client] = Client) -> Population:
    """``cases`` cases, shared round-robin by ``mediators`` mediators (the world's own first)."""
    people = Population()
    console = Client(world.url, str(world.coordinator.device_token), trust_root=world.trust_root, http=http)
    await console.login(world.coordinator.person_id, world.coordinator.identity)
    people.clients.append(console)
    gate = asyncio.Semaphore(8)  # a few at a time: a coordinator enrolls one after another

    async def device(kind: str, **where: str) -> str:
        made = await console.call("POST", "/v1/devices", json_body={"kind": kind, "label": f"bench {kind}", **where})
        return str(made["device_token"])

    async def enroll(label: str, role: str, relation: str | None, terminal_user: bool = False
                     ) -> tuple[str, Identity, str | None]:
        identity = Identity.generate()
        secret = passphrase.generate() if terminal_user else None
        person = await console.enroll(public=identity.public, label=label, role=role, relation=relation,
                                      institution_id=world.institution_id if terminal_user else None,
                                      key_bundle=world.kdf.seal(identity, secret) if secret else None)
        return str(person["id"]), identity, secret

    async def sign_in(token: str, person_id: str, identity: Identity | None, secret: str | None = None) -> Client:
        signed = client(world.url, token, trust_root=world.trust_root, http=http)
        if secret is not None:
            identity = await signed.unlock_on_terminal(person_id, secret, **world.kdf.open_kwargs)
        assert identity is not None
        await signed.login(person_id, identity)
        people.clients.append(signed)
        return signed

    people.desks.append(await sign_in(str(world.mediator.device_token), world.mediator.person_id,
                                      world.mediator.identity))
    for n in range(1, mediators):
        person_id, identity, _ = await enroll(f"Mediator {n}", "mediator", None)
        people.desks.append(await sign_in(await device("mediator_desk", person_id=person_id), person_id, identity))

    async def one_case(n: int) -> Case:
        async with gate:
            desk = people.desks[n % len(people.desks)]
            victim_id, victim_identity, _ = await enroll(f"Victim {n}", "participant", "victim")
            offender_id, _, secret = await enroll(f"Offender {n}", "participant", "offender", terminal_user=True)
            case = await console.call("POST", "/v1/cases", json_body={
                "referral_source": "victim", "institution_id": world.institution_id})
            for person_id in (victim_id, offender_id):
                await console.call("POST", f"/v1/cases/{case['id']}/participants", json_body={"person_id": person_id})
            await console.call("POST", f"/v1/cases/{case['id']}/mediators", json_body={"person_id": desk.person_id})
            offender = await sign_in(await device("terminal", institution_id=world.institution_id), offender_id,
                                     None, secret)
            victim = await sign_in(await device("participant_device", person_id=victim_id), victim_id,
                                   victim_identity)
            return Case(str(case["id"]), victim, offender, desk)

    people.cases = list(await asyncio.gather(*(one_case(n) for n in range(cases))))
    return people
