"""Promise 1: no plaintext and no private key ever reaches the server's disk, database or logs."""

from __future__ import annotations

import io
import logging
import secrets
from pathlib import Path

import pytest

from relay import envelope
from relay.client.scenario import World

from .conftest import Relay


def server_bytes(data_dir: Path) -> bytes:
    """Every byte the relay has on disk: database, WAL, blobs, temp files."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


async def test_no_letter_text_key_or_passphrase_reaches_the_server(
        relay: Relay, world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    marker = f"MARKER-{secrets.token_hex(12)}"
    letter = f"Dear reader, {marker} is the word only you should see.\n".encode()
    redacted = f"Dear reader, the mediator kept this {marker}-REDACTED line.\n".encode()
    note = f"Please rewrite the part about {marker}-NOTE."
    to_mediator = f"Private word for the mediator: {marker}-MEDIATOR".encode()

    victim, mediator = await world.session(world.victim), await world.session(world.mediator)
    offender = await world.session(world.offender, on_terminal=True)
    try:
        first = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(letter))
        await mediator.release(first["id"], rendition=io.BytesIO(redacted))
        await offender.fetch(first["id"], io.BytesIO())
        second = await offender.send(case_id=world.case_id, recipient=world.victim.person_id, src=io.BytesIO(letter))
        await mediator.return_to_sender(second["id"], note)
        await offender.read_note(second["id"], io.BytesIO())
        await victim.send(case_id=world.case_id, recipient="mediators", src=io.BytesIO(to_mediator))
        await mediator.send(case_id=world.case_id, recipient=world.victim.person_id, src=io.BytesIO(letter))
    finally:
        for client in (victim, mediator, offender):
            await client.close()

    on_disk = server_bytes(relay.data_dir)
    logs = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records).encode()
    assert len(on_disk) > 10_000 and logs  # something was written and logged
    secrets_that_must_not_leak = [marker.encode(), world.offender.passphrase.encode()]  # type: ignore[union-attr]
    for someone in (world.coordinator, world.mediator, world.victim, world.offender):
        sign_seed = bytes(someone.identity.signing_key)
        box_secret = bytes(someone.identity.box_key)
        secrets_that_must_not_leak += [sign_seed, box_secret, envelope.b64e(sign_seed).encode(),
                                       envelope.b64e(box_secret).encode(), sign_seed.hex().encode()]
    for token in (world.terminal_token, world.victim.device_token, world.mediator.device_token):
        secrets_that_must_not_leak.append(str(token).split(".", 1)[1].encode())
    for needle in secrets_that_must_not_leak:
        assert needle not in on_disk
        assert needle not in logs
