"""Hostile requests, generated systematically, against a real relay on loopback (issue 10).

Every route of ``relay.server.routes.ROUTES`` is called as every role with malformed bodies,
headers and path values; a few requests are written straight to the socket to reach aiohttp's
parser. The relay runs behind its own server (``relay.server.serving.running``), as
``relay serve`` runs it. Asserted for every answer:

- no 5xx at all;
- every error is ``application/problem+json`` with a ``type`` the relay defines;
- no answer (body or headers) contains a secret: a device or session token, a passphrase, the
  first-start code.

Bounded: about 5,700 requests, under ten seconds on two cores. Run alone with
``python -m tests.test_hostile_requests`` for a summary.
"""

from __future__ import annotations

import asyncio
import collections
import io
import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relay import ids
from relay.client.kdf import TEST_KDF
from relay.client.scenario import World, build_world
from relay.client.sdk import Client
from relay.server import errors
from relay.server.app import create_app
from relay.server.routes import ROUTES
from relay.server.serving import running
from relay.server.settings import Settings

PREFIX = "urn:mediation-relay:problem:"
KNOWN_TYPES = {PREFIX + cls.type for cls in vars(errors).values()
               if isinstance(cls, type) and issubclass(cls, errors.RelayError)}


def _multipart(boundary: str, body: bytes) -> tuple[str, bytes]:
    return f"multipart/form-data; boundary={boundary}", body


MALFORMED_BODIES: list[tuple[str, str | None, bytes]] = [
    ("empty", "application/json", b""),
    ("not json", "application/json", b"{not json"),
    ("nested 5000", "application/json", b"[" * 5000 + b"]" * 5000),
    ("nested object", "application/json", b'{"a":' * 3000 + b"1" + b"}" * 3000),
    ("duplicate keys", "application/json", b'{"name": "a", "name": "b"}'),
    ("null", "application/json", b"null"),
    ("array", "application/json", b"[1, 2, 3]"),
    ("NaN", "application/json", b'{"days": NaN}'),
    ("huge integer", "application/json", b'{"days": ' + b"9" * 5000 + b"}"),
    ("not utf-8", "application/json", b'{"name": "\xff\xfe"}'),
    ("lone surrogate", "application/json", b'{"name": "\\ud800"}'),
    ("oversize", "application/json", b'{"name": "' + b"a" * 300_000 + b'"}'),
    ("wrong types", "application/json", b'{"name": 1, "person_id": [], "kind": {}, "hold": "yes", "days": true}'),
    ("bad dates", "application/json", b'{"effective_from": "2026-02-30T00:00:00Z", "valid_until": "2026-13-01T00:00:00Z"}'),
    ("multipart no boundary", "multipart/form-data", b"--x\r\n\r\n"),
    ("multipart empty", *_multipart("b" * 20, b"")),
    ("multipart long boundary", *_multipart("x" * 71, b"--" + b"x" * 71 + b"\r\n")),
    ("multipart many headers", *_multipart("bnd", b"--bnd\r\n" + b"X: y\r\n" * 300 + b"\r\n{}\r\n--bnd--\r\n")),
    ("multipart nested meta", *_multipart("bnd", b'--bnd\r\nContent-Disposition: form-data; name="meta"\r\n\r\n'
                                                 + b"[" * 4000 + b"\r\n--bnd--\r\n")),
    ("octet stream", "application/offset+octet-stream", b"\0" * 100),
    ("no content type", None, b"{}"),
]
MALFORMED_HEADERS: list[tuple[str, dict[str, str]]] = [
    ("tus digits", {"Tus-Resumable": "1.0.0", "Upload-Length": "²", "Upload-Offset": "٣"}),
    ("tus huge", {"Tus-Resumable": "1.0.0", "Upload-Length": "9" * 4400, "Upload-Offset": "9" * 4400}),
    ("tus negative", {"Tus-Resumable": "1.0.0", "Upload-Length": "-5", "Upload-Offset": "-1",
                      "Upload-Checksum": "md5 AAAA"}),
    ("bad checksum", {"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Upload-Checksum": "sha256 !!!",
                      "Content-Type": "application/offset+octet-stream"}),
    ("range past end", {"Range": "bytes=99999999-"}),
    ("range backwards", {"Range": "bytes=10-2"}),
    ("if-match", {"If-Match": '"x"', "If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}),
    ("bad bearer", {"Authorization": "Bearer " + "x" * 4000}),
    ("odd language", {"Accept-Language": "fr;q=abc, *;q=" + "9" * 500}),
]
BAD_PATH_VALUES = ["..%2F..%2Fetc%2Fpasswd", "%00", "x" * 3000, "itm_" + "0" * 16, "%C3%A9%F0%9F%98%80", "-1", "²"]


@dataclass
class Role:
    name: str
    headers: dict[str, str]


@dataclass
class Tally:
    requests: int = 0
    statuses: collections.Counter[int] = None  # type: ignore[assignment]
    secrets: list[str] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.statuses = collections.Counter()
        self.secrets = []


def _fill(path: str, value_of: dict[str, str]) -> str:
    for name, value in value_of.items():
        path = path.replace("{" + name + "}", value)
    return path


def _requests(world: World, real: dict[str, str], roles: list[Role]) -> Iterator[tuple[Role, str, str, dict[str, str], bytes]]:
    """(role, method, path, headers, body) for every route x role x malformed input."""
    # Changing routes get ids that exist nowhere (a real revoke or lift would change the world
    # under the rest of the run); reads also get the real ones.
    fake = {name: ids.new(kind) for name, kind in (("item_id", "item"), ("case_id", "case"), ("person_id", "person"),
                                                   ("device_id", "device"), ("condition_id", "condition"),
                                                   ("approval_id", "approval"), ("upload_id", "upload"))}
    routes = sorted(ROUTES, key=lambda r: (r[0], r[1]) == ("DELETE", "/v1/auth/session"))  # sign-outs last
    for index, (method, template, _) in enumerate(routes):
        values = [real if method in ("GET", "HEAD") else fake, fake,
                  {name: BAD_PATH_VALUES[index % len(BAD_PATH_VALUES)] for name in fake}]
        for r, role in enumerate(roles):
            name, content_type, body = MALFORMED_BODIES[(index + r) % len(MALFORMED_BODIES)]
            _, extra = MALFORMED_HEADERS[(index + r) % len(MALFORMED_HEADERS)]
            headers = {**role.headers, **extra}
            if content_type:
                headers["Content-Type"] = content_type
            yield role, method, _fill(template, values[r % len(values)]), headers, body
        # Every malformed body and header set, as each of the two most capable roles.
        for role in (roles[1], roles[2], roles[3]):
            for _name, content_type, body in MALFORMED_BODIES:
                headers = {**role.headers, **({"Content-Type": content_type} if content_type else {})}
                yield role, method, _fill(template, values[0]), headers, body
            for _name, extra in MALFORMED_HEADERS:
                yield role, method, _fill(template, values[0]), {**role.headers, **extra}, b""


RAW = [
    b"GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Relay-Device: {token}" + b"A" * 9000 + b"\r\n\r\n",
    b"GET /v1/me HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: {token}\r\n" % i for i in range(200)) + b"\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n",
    b"POST /v1/bootstrap HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /v1/bootstrap HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}{}{}",
    b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: {token}\r\n\r\n",
]


def _check(status: int, content_type: str, body: bytes, headers: Any, secrets: list[str], what: str) -> None:
    assert status < 500, f"{what}: {status} {body[:200]!r}"
    text = body.decode("utf-8", "replace") + " " + " ".join(f"{k}: {v}" for k, v in headers.items())
    leaked = [s[:8] + "…" for s in secrets if s in text]
    assert not leaked, f"{what}: the answer echoes a secret {leaked}"
    assert "aiohttp" not in headers.get("Server", "") and "Python" not in headers.get("Server", "")
    if status >= 400:
        assert content_type == "application/problem+json", f"{what}: {status} {content_type} {body[:120]!r}"
        if not body and what == "HEAD request":  # a HEAD answer carries the headers only
            return
        problem = json.loads(body)
        assert problem["type"] in KNOWN_TYPES and problem["status"] == status, f"{what}: {problem}"


async def hostile_run(data_dir: Path) -> Tally:
    settings = Settings(data_dir=data_dir, header_timeout_seconds=2, body_idle_seconds=2)
    codes: list[str] = []
    app = create_app(settings, bootstrap_printer=codes.append)
    tally = Tally()
    async with running(app, settings, host="127.0.0.1", port=0) as (host, port):
        url = f"http://{host}:{port}"
        code = codes[0]
        world = await build_world(url, code, kdf=TEST_KDF)
        clients: list[Client] = [await world.session(world.coordinator), await world.session(world.victim),
                                 await world.session(world.mediator),
                                 await world.session(world.offender, on_terminal=True)]
        try:
            sent = await clients[1].send(case_id=world.case_id, recipient=world.offender.person_id,
                                         src=io.BytesIO(b"a letter"))
            await clients[2].release(sent["id"])
            upload_id = await clients[1].create_upload(1000)
            roles = [Role("anonymous", {}), Role("coordinator", clients[0]._headers()),
                     Role("victim", clients[1]._headers()), Role("mediator", clients[2]._headers()),
                     Role("offender on a terminal", clients[3]._headers()),
                     Role("forged device", {"X-Relay-Device": "dev_0000000000000000.forged",
                                            "Authorization": "Bearer ses_forged"})]
            secrets = [code] + [str(c.device_token) for c in clients] + [str(c.session_token) for c in clients]
            secrets += [p for p in (world.offender.passphrase, world.victim.passphrase) if p]
            tally.secrets = secrets
            real = {"item_id": sent["id"], "case_id": world.case_id, "person_id": world.offender.person_id,
                    "device_id": "dev_0000000000000000", "condition_id": ids.new("condition"),
                    "approval_id": ids.new("approval"), "upload_id": upload_id}
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
                for role, method, path, headers, body in _requests(world, real, roles):
                    async with http.request(method, url + path, headers=headers, data=body,
                                            skip_auto_headers={"Content-Type"}) as response:
                        answer = await response.read()
                        tally.requests += 1
                        tally.statuses[response.status] += 1
                        what = f"{role.name} {method} {path[:80]}"
                        _check(response.status, response.content_type, answer, response.headers, secrets,
                               "HEAD request" if method == "HEAD" and not answer else what)
            for raw in RAW:
                raw = raw.replace(b"{token}", str(clients[1].device_token).encode())
                reader, writer = await asyncio.open_connection(host, port)
                try:
                    writer.write(raw)
                    await writer.drain()
                    async with asyncio.timeout(10):
                        answer = await reader.read()
                finally:
                    writer.close()
                head, _, body = answer.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                headers = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
                tally.requests += 1
                tally.statuses[status] += 1
                _check(status, headers.get("Content-Type", "").split(";")[0], body, headers, secrets,
                       f"raw {raw[:30]!r}")
            # The world still works: nothing above changed what a good request gets (a new session:
            # the sign-out route, called last, ended the old ones).
            clients.append(await world.session(world.victim))
            assert [i["id"] for i in await clients[-1].call("GET", "/v1/items/sent")] == [sent["id"]]
        finally:
            for client in clients:
                await client.close()
    return tally


async def test_hundreds_of_hostile_requests_get_problems_and_never_a_5xx(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    tally = await hostile_run(tmp_path / "relay-data")
    assert tally.requests > 500
    assert not [s for s in tally.statuses if s >= 500]
    # Nor does the log keep a secret, an address or a traceback.
    assert tally.secrets and not [s[:8] for s in tally.secrets if s in caplog.text]
    assert "127.0.0.1" not in caplog.text and "Traceback" not in caplog.text


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        result = asyncio.run(hostile_run(Path(scratch) / "relay-data"))
    print(f"{result.requests} hostile requests, no 5xx; statuses: {dict(sorted(result.statuses.items()))}")
