"""Approved devices and sessions: challenge login, expiry, revocation, terminal scope, bundle limits."""

from __future__ import annotations

import sqlite3

import pytest

from relay import envelope
from relay.client.scenario import World
from relay.client.sdk import Client, ProblemError
from relay.envelope import Identity

from .conftest import Relay


def audit_actions(relay: Relay) -> list[str]:
    conn = sqlite3.connect(f"file:{relay.data_dir / 'relay.sqlite3'}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT action FROM audit_log ORDER BY seq")]
    finally:
        conn.close()


def stored_token_hashes(relay: Relay) -> list[str]:
    conn = sqlite3.connect(f"file:{relay.data_dir / 'relay.sqlite3'}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("SELECT token_hash FROM devices UNION ALL "
                                               "SELECT secret_hash FROM sessions")]
    finally:
        conn.close()


async def test_tokens_are_stored_only_as_hashes(relay: Relay, world: World) -> None:
    client = await world.session(world.victim)
    try:
        secrets = [t.split(".", 1)[1] for t in (world.victim.device_token, client.session_token, world.terminal_token)]
        stored = stored_token_hashes(relay)
        assert all(len(h) == 64 for h in stored)
        for secret in secrets:
            assert all(secret not in h for h in stored)
    finally:
        await client.close()


async def test_login_with_another_persons_key_is_refused_and_audited(relay: Relay, world: World) -> None:
    async with world.client(str(world.victim.device_token)) as client:
        with pytest.raises(ProblemError) as refused:
            await client.login(world.victim.person_id, Identity.generate())
    assert (refused.value.status, refused.value.type) == (401, "login-refused")
    assert "login.failed" in audit_actions(relay)


async def test_a_challenge_is_single_use_and_short_lived(relay: Relay, world: World) -> None:
    async with world.client(str(world.victim.device_token)) as client:
        challenge = await client.call("POST", "/v1/auth/challenge", json_body={"person_id": world.victim.person_id})
        statement = envelope.login_statement(challenge=challenge["challenge"], device_id=client._device_id(),
                                             person_id=world.victim.person_id)
        body = {"challenge_id": challenge["challenge_id"],
                "signature": envelope.sign(envelope.Domain.LOGIN, statement, world.victim.identity.signing_key)}
        await client.call("POST", "/v1/auth/session", json_body=body)
        with pytest.raises(ProblemError):
            await client.call("POST", "/v1/auth/session", json_body=body)  # replay

        late = await client.call("POST", "/v1/auth/challenge", json_body={"person_id": world.victim.person_id})
        relay.clock.advance(seconds=121)
        statement = envelope.login_statement(challenge=late["challenge"], device_id=client._device_id(),
                                             person_id=world.victim.person_id)
        with pytest.raises(ProblemError) as expired:
            await client.call("POST", "/v1/auth/session", json_body={
                "challenge_id": late["challenge_id"],
                "signature": envelope.sign(envelope.Domain.LOGIN, statement, world.victim.identity.signing_key)})
        assert expired.value.type == "login-refused"


async def test_a_signature_of_another_domain_does_not_log_in(world: World) -> None:
    async with world.client(str(world.victim.device_token)) as client:
        challenge = await client.call("POST", "/v1/auth/challenge", json_body={"person_id": world.victim.person_id})
        statement = envelope.login_statement(challenge=challenge["challenge"], device_id=client._device_id(),
                                             person_id=world.victim.person_id)
        wrong_domain = envelope.b64e(world.victim.identity.signing_key.sign(
            envelope.Domain.RECEIPT.value + envelope.canonical_json(statement)).signature)
        with pytest.raises(ProblemError) as refused:
            await client.call("POST", "/v1/auth/session", json_body={
                "challenge_id": challenge["challenge_id"], "signature": wrong_domain})
        assert refused.value.type == "login-refused"


async def test_sessions_end_when_idle_at_their_limit_and_at_sign_out(relay: Relay, world: World) -> None:
    client = await world.session(world.victim)
    try:
        relay.clock.advance(seconds=14 * 60)
        await client.call("GET", "/v1/me")  # activity keeps it alive
        relay.clock.advance(seconds=14 * 60)
        await client.call("GET", "/v1/me")
        relay.clock.advance(seconds=15 * 60 + 1)
        with pytest.raises(ProblemError) as idle:
            await client.call("GET", "/v1/me")
        assert idle.value.type == "session-required"
    finally:
        client.session_token = None
        await client.close()

    terminal = await world.session(world.offender, on_terminal=True)
    try:
        for _ in range(3):  # active, but terminal sessions last 30 minutes at most
            relay.clock.advance(seconds=11 * 60)
            try:
                await terminal.call("GET", "/v1/me")
            except ProblemError as ended:
                assert ended.type == "session-required"
                break
        else:
            pytest.fail("a terminal session outlived its 30-minute limit")
    finally:
        terminal.session_token = None
        await terminal.close()

    client = await world.session(world.victim)
    token = client.session_token
    await client.logout()
    client.session_token = token
    with pytest.raises(ProblemError):
        await client.call("GET", "/v1/me")
    client.session_token = None
    await client.close()


async def test_revoking_a_device_or_a_person_ends_their_sessions(world: World) -> None:
    coordinator = await world.session(world.coordinator)
    victim = await world.session(world.victim)
    mediator = await world.session(world.mediator)
    try:
        await coordinator.call("POST", f"/v1/devices/{victim._device_id()}/revoke")
        with pytest.raises(ProblemError) as gone:
            await victim.call("GET", "/v1/me")
        assert gone.value.status == 401
        await coordinator.call("POST", f"/v1/people/{world.mediator.person_id}/revoke")
        with pytest.raises(ProblemError):
            await mediator.call("GET", "/v1/review/queue")
        async with world.client(str(world.mediator.device_token)) as again:
            with pytest.raises(ProblemError) as refused:
                await again.login(world.mediator.person_id, world.mediator.identity)
            assert refused.value.type == "login-refused"
    finally:
        for client in (coordinator, victim, mediator):
            client.session_token = None
            await client.close()


async def test_a_terminal_serves_only_people_whose_case_is_at_its_institution(world: World) -> None:
    coordinator = await world.session(world.coordinator)
    try:
        other = await coordinator.call("POST", "/v1/institutions", json_body={"name": "Institution B"})
        kiosk_b = await coordinator.call("POST", "/v1/devices", json_body={
            "kind": "terminal", "institution_id": other["id"], "label": "B kiosk"})
    finally:
        await coordinator.close()
    async with world.client(kiosk_b["device_token"]) as client:
        with pytest.raises(ProblemError) as bundle:
            await client.unlock_on_terminal(world.offender.person_id, str(world.offender.passphrase),
                                            **world.kdf.open_kwargs)
        assert bundle.value.status == 404
        with pytest.raises(ProblemError) as login:
            await client.login(world.offender.person_id, world.offender.identity)
        assert login.value.type == "login-refused"
    # Nor does a terminal serve mediators or the victim on their own device's identity.
    async with world.client(world.terminal_token) as client:
        for someone in (world.mediator, world.coordinator):
            with pytest.raises(ProblemError):
                await client.login(someone.person_id, someone.identity)


async def test_key_bundle_fetches_are_rate_limited_and_audited(relay: Relay, world: World) -> None:
    async with world.client(world.terminal_token) as client:
        for _ in range(6):
            await client.call("GET", f"/v1/people/{world.offender.person_id}/key-bundle")
        with pytest.raises(ProblemError) as limited:
            await client.call("GET", f"/v1/people/{world.offender.person_id}/key-bundle")
        assert (limited.value.status, limited.value.type) == (429, "rate-limited")
        relay.clock.advance(hours=1, seconds=1)
        await client.call("GET", f"/v1/people/{world.offender.person_id}/key-bundle")
    actions = audit_actions(relay)
    assert actions.count("key_bundle.fetched") == 7 and "key_bundle.rate_limited" in actions


async def test_the_first_enrollment_code_works_once(relay: Relay, world: World) -> None:
    from relay.client.sdk import bootstrap

    with pytest.raises(ProblemError) as again:
        await bootstrap(relay.url, relay.codes[0], Identity.generate(), label="x", device_label="y")
    assert again.value.type == "bootstrap-refused"


async def test_directory_entries_verify_to_the_trust_root(world: World) -> None:
    client = await world.session(world.victim)
    try:
        mediator = await client.person(world.mediator.person_id)
        assert mediator.role == "mediator" and mediator.keys == world.mediator.identity.public
        pinned_elsewhere = Client(world.url, world.victim.device_token, trust_root=envelope.b64e(bytes(32)))
        async with pinned_elsewhere:
            await pinned_elsewhere.login(world.victim.person_id, world.victim.identity)
            from relay.client.sdk import VerificationError

            with pytest.raises(VerificationError):
                await pinned_elsewhere.person(world.mediator.person_id)
    finally:
        await client.close()


async def test_a_terminal_refuses_a_key_bundle_whose_keys_the_person_was_not_enrolled_with(
        relay: Relay, world: World) -> None:
    """A relay that swaps a kiosk participant's bundle (and the keys it checks sign-ins against)
    for keys it knows gets a session, but the terminal checks the unlocked keys against the signed
    enrollment, signs out and wipes them: nothing is signed or opened with a key the relay holds."""
    from relay.client.sdk import VerificationError

    planted = Identity.generate()
    passphrase = str(world.offender.passphrase)
    bundle = world.kdf.seal(planted, passphrase)
    conn = sqlite3.connect(relay.data_dir / "relay.sqlite3")
    with conn:
        conn.execute("UPDATE people SET key_bundle = ?, sign_pk = ?, box_pk = ? WHERE id = ?",
                     (bundle, envelope.b64e(planted.public.sign_pk), envelope.b64e(planted.public.box_pk),
                      world.offender.person_id))
    conn.close()
    async with world.client(world.terminal_token) as kiosk:
        identity = await kiosk.unlock_on_terminal(world.offender.person_id, passphrase, **world.kdf.open_kwargs)
        with pytest.raises(VerificationError, match="enrolled with"):
            await kiosk.login(world.offender.person_id, identity)
        assert kiosk.session_token is None and kiosk.identity is None
        with pytest.raises(envelope.EnvelopeError):
            identity.signing_key  # noqa: B018 - wiped: reading it fails
