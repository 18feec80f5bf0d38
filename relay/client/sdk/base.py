"""The connection to the relay: transport, problems, sessions, and the signed key directory
(every key a client trusts is checked along the enrollment chain to the provisioned trust root)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp

from relay import envelope
from relay.clock import SystemClock
from relay.envelope import Domain, Identity, PublicIdentity
from relay.wire import DEVICE_HEADER, is_loopback

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


TranscodeProgress = Callable[[float, float], None]  # (seconds done, seconds total)


CHUNK = 64 * 1024



class ProblemError(Exception):
    """The relay answered with an RFC 9457 problem."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.type = str(problem.get("type", "")).rsplit(":", 1)[-1]
        super().__init__(problem.get("title") or f"HTTP {status}")


class OverLimit(Exception):
    """The content is larger, longer or of a kind the relay does not accept: nothing was sent."""


class InsecureTransport(Exception):
    """The relay's address is not https (and not loopback): tokens would travel in clear."""


class InvalidRecipient(ValueError):
    """Not someone this sender can send to (``reason``: "self", "mediator" for a mediator's id
    instead of ``"mediators"``, "not-participant" for a mediator writing to a non-participant).
    Raised before anything is sealed; a mistake to correct, not a sign of tampering."""

    def __init__(self, recipient: str, reason: str) -> None:
        super().__init__(f"cannot send to {recipient}: {reason}")
        self.recipient = recipient
        self.reason = reason


class VerificationError(Exception):
    """Something the relay sent did not verify: a signature, a hash, a key chain. Not shown."""


@dataclass(frozen=True)
class Person:
    id: str
    role: str
    side: str | None
    keys: PublicIdentity



class BaseClient:
    def __init__(self, url: str, device_token: str | None = None, *, trust_root: str | None = None,
                 lang: str = "en", http: aiohttp.ClientSession | None = None) -> None:
        self.url = url.rstrip("/")
        _require_tls(self.url)
        self.device_token = device_token
        self.trust_root = envelope.b64d(trust_root) if trust_root else None
        self.lang = lang
        self.session_token: str | None = None
        self.person_id: str | None = None
        self.identity: Identity | None = None
        self._http = http
        self._own_http = http is None
        self._people: dict[str, Person] = {}
        self._unlocked: Identity | None = None
        self.clock = SystemClock()

    async def __aenter__(self) -> Self:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=120))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self.session_token:
            try:
                await self.logout()
            except (ProblemError, aiohttp.ClientError):
                pass
        if self._unlocked is not None:
            # A key unlocked here (on a terminal) lives for this session only.
            self._unlocked.wipe()
            self._unlocked = None
        self.identity = None
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept-Language": self.lang, "Accept": "application/json, application/problem+json"}
        if self.device_token:
            headers[DEVICE_HEADER] = self.device_token
        if self.session_token:
            headers["Authorization"] = f"Bearer {self.session_token}"
        return headers

    async def call(self, method: str, path: str, *, json_body: Any = None, data: Any = None) -> Any:
        assert self._http is not None, "use 'async with Client(...)'"
        async with self._http.request(method, self.url + path, json=json_body, data=data,
                                      headers=self._headers()) as response:
            return await _decode(response)

    @asynccontextmanager
    async def _download(self, path: str) -> AsyncIterator[aiohttp.ClientResponse]:
        assert self._http is not None
        async with self._http.get(self.url + path, headers=self._headers()) as response:
            if response.status >= 400:
                await _decode(response)
            yield response

    async def _raw(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        """A request whose answer is in its headers (tus); problems still raise ProblemError."""
        assert self._http is not None
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        async with self._http.request(method, self.url + path, headers=headers, **kwargs) as response:
            if response.status >= 400:
                await _decode(response)
            await response.read()
            return response

    async def login(self, person_id: str, identity: Identity) -> dict[str, Any]:
        """Win a session by signing the relay's fresh challenge with this person's key."""
        challenge = await self.call("POST", "/v1/auth/challenge", json_body={"person_id": person_id})
        statement = envelope.login_statement(challenge=challenge["challenge"], device_id=self._device_id(),
                                             person_id=person_id)
        session = await self.call("POST", "/v1/auth/session", json_body={
            "challenge_id": challenge["challenge_id"],
            "signature": envelope.sign(Domain.LOGIN, statement, identity.signing_key)})
        self.session_token = session["session_token"]
        self.person_id = person_id
        self.identity = identity
        if identity is self._unlocked:
            await self._check_unlocked_keys(person_id, identity)
        return session  # type: ignore[no-any-return]

    async def _check_unlocked_keys(self, person_id: str, identity: Identity) -> None:
        """A key bundle comes from the relay, so before a terminal acts with it, its keys must be
        the ones the person was enrolled with (verified along the chain to the trust root): a
        swapped bundle would otherwise sign with a key the relay knows."""
        try:
            enrolled = await self.person(person_id)
            if enrolled.keys != identity.public:
                raise VerificationError("the key bundle does not hold the keys this person was enrolled with")
        except BaseException:
            try:
                await self.logout()
            finally:
                self.person_id = self.identity = None
                identity.wipe()
            raise

    async def logout(self) -> None:
        if self.session_token:
            try:
                await self.call("DELETE", "/v1/auth/session")
            finally:
                self.session_token = None

    async def unlock_on_terminal(self, person_id: str, passphrase: str, **kdf: int) -> Identity:
        """On a terminal: fetch the person's sealed key bundle and open it in memory."""
        bundle = await self.call("GET", f"/v1/people/{person_id}/key-bundle")
        try:
            self._unlocked = envelope.open_identity(envelope.b64d(bundle["key_bundle"]), passphrase, **kdf)
        except envelope.EnvelopeError:
            raise VerificationError("the passphrase does not open this key") from None
        return self._unlocked

    def _device_id(self) -> str:
        assert self.device_token, "no device token"
        return self.device_token.split(".", 1)[0]

    def _me(self) -> tuple[str, Identity]:
        if self.person_id is None or self.identity is None:
            raise RuntimeError("log in first")
        return self.person_id, self.identity

    async def person(self, person_id: str, _depth: int = 0) -> Person:
        """A person's keys and role, verified along the enrollment chain to the trust root."""
        if person_id in self._people:
            return self._people[person_id]
        if self.trust_root is None or _depth > 4:
            raise VerificationError("no trust root, or an enrollment chain too long")
        entry = await self.call("GET", f"/v1/directory/{person_id}")
        try:
            doc = envelope.parse_json(envelope.b64d(entry["enrollment"]))
            if doc.get("person_id") != person_id:
                raise VerificationError("the directory answered for someone else")
            if doc["enrolled_by"] == person_id:
                signer_pk = envelope.b64d(doc["sign_pk"])
                if signer_pk != self.trust_root:
                    raise VerificationError("a self-signed enrollment that is not the trust root")
            else:
                signer = await self.person(doc["enrolled_by"], _depth + 1)
                if signer.role != "coordinator":
                    raise VerificationError("enrolled by someone who is not a coordinator")
                signer_pk = signer.keys.sign_pk
            envelope.verify(Domain.ENROLLMENT, doc, entry["enrollment_sig"], signer_pk)
            person = Person(person_id, doc["role"], doc.get("side"),
                            PublicIdentity(envelope.b64d(doc["sign_pk"]), envelope.b64d(doc["box_pk"])))
        except (envelope.EnvelopeError, KeyError, ValueError, TypeError):
            raise VerificationError("an enrollment did not verify") from None
        self._people[person_id] = person
        return person


def _require_tls(url: str) -> None:
    """Tokens, key bundles and sealed keys travel in requests: plain HTTP only on loopback."""
    parts = urlsplit(url)
    loopback = is_loopback(parts.hostname or "")
    if parts.scheme == "https" or (parts.scheme == "http" and loopback):
        return
    if parts.scheme == "http" and os.environ.get("RELAY_ALLOW_PLAIN_HTTP") == "1":
        return
    raise InsecureTransport(f"refusing {parts.scheme}:// to {parts.hostname}: use https:// (plain http only on loopback)")


async def _decode(response: aiohttp.ClientResponse) -> Any:
    if response.status == 204:
        return None
    text = await response.text()
    if response.status >= 400:
        try:
            problem = json.loads(text)
        except ValueError:
            problem = {"title": f"HTTP {response.status}"}
        raise ProblemError(response.status, problem)
    try:
        # Signed documents ride in these bodies: duplicate member names are refused, since
        # parsers disagree on which one wins (docs/envelope-v2.md section 6.1).
        return envelope.parse_json(text) if text else None
    except envelope.EnvelopeError:
        raise VerificationError("the relay's answer is not JSON, or repeats a member name") from None


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)
