"""docs/http-api.md cannot silently go stale.

The doc's whole exchange is compared, step by step, with the same exchange run now through the
SDK against a real relay on loopback (tests/http_exchange.py records it): the same requests in
the same order, to the same routes, with the same headers, answered with the same statuses, and
every body with the same fields and value types. Values differ (ids, keys, times) and are not
compared. The route table must name every route of relay/server/routes.py, and nothing else.

When this fails because the exchange changed on purpose, regenerate the doc's sequence with
``.venv/bin/python -m tests.http_exchange --write docs/http-api.md`` and reread its prose.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relay.client.kdf import TEST_KDF
from relay.client.profile import Profile
from relay.client.scenario import build_world
from relay.client.sdk import ProblemError
from relay.envelope import documents
from relay.server.app import create_app
from relay.server.routes import ROUTES
from relay.server.settings import Settings
from tests import http_exchange
from tests.conftest import MovableClock, Relay

DOC = Path(__file__).resolve().parent.parent / "docs" / "http-api.md"
REGENERATE = "regenerate with: .venv/bin/python -m tests.http_exchange --write docs/http-api.md"


@dataclass
class Step:
    number: int
    method: str
    path: str
    status: int
    request_headers: list[str] | None = None  # None: a one-line step ("as in N")
    request: Any = None
    response_headers: list[str] | None = None
    response: Any = None


def _body_shape(headers: dict[str, str], lines: list[str]) -> Any:
    text = "\n".join(lines).strip()
    if not text:
        return None
    content_type = headers.get("Content-Type", "")
    if content_type.startswith("multipart/"):
        shape: dict[str, Any] = {}
        for part in re.split(r"^--…(?:--)?$", text, flags=re.M)[1:]:
            head, _, content = part.strip("\n").partition("\n\n")
            if not head:
                continue
            part_headers = dict(line.split(": ", 1) for line in head.splitlines())
            key = f"part:{part_headers['Content-Disposition']}"
            json_part = "json" in part_headers.get("Content-Type", "")
            shape[key] = http_exchange.shape(json.loads(content)) if json_part else "bytes"
        return shape
    if "json" in content_type:
        return http_exchange.shape(json.loads(text))
    assert re.fullmatch(r"<\d+ bytes: .*>", text), f"a body that is neither JSON nor <N bytes: …>: {text!r}"
    return "bytes"


def _message(block: str) -> tuple[str, dict[str, str], Any]:
    lines = block.split("\n")
    blank = lines.index("") if "" in lines else len(lines)
    headers = dict(line.split(": ", 1) for line in lines[1:blank])
    return lines[0], headers, _body_shape(headers, lines[blank + 1:])


def documented_steps(text: str) -> list[Step]:
    begin, end = text.index(http_exchange.BEGIN), text.index(http_exchange.END)
    section = text[begin:end]
    steps: list[Step] = []
    for match in re.finditer(r"^\*\*(\d+)\.\*\*(.*?)(?=^\*\*\d+\.\*\*|\Z)", section, flags=re.M | re.S):
        number, body = int(match.group(1)), re.sub(r"^#+ .*$", "", match.group(2), flags=re.M)  # a phase's heading
        blocks = re.findall(r"^```http\n(.*?)\n```$", body, flags=re.M | re.S)
        if not blocks:
            line = re.fullmatch(r"\s*(?:[^`\n]*: )?`(\S+) (\S+)` → (\d+), as in \d+\.\s*", body)
            assert line, f"step {number} has neither two http blocks nor an 'as in' line"
            steps.append(Step(number, line.group(1), line.group(2), int(line.group(3))))
            continue
        assert len(blocks) == 2, f"step {number}: one request block and one response block"
        request_line, request_headers, request = _message(blocks[0])
        status_line, response_headers, response = _message(blocks[1])
        method, path = request_line.split(" ", 1)
        steps.append(Step(number, method, path, int(status_line.split(" ")[1]), sorted(request_headers), request,
                          sorted(response_headers), response))
    return steps


def _recorded_headers(exchange: http_exchange.Exchange, request: bool) -> list[str]:
    # Exactly what the renderer prints (it leaves out aiohttp's Content-Type on an empty request
    # and a Content-Length that only restates a JSON body's).
    shown = http_exchange.render_exchange(exchange)[0 if request else 1]
    message = shown.split("\n")
    blank = message.index("") if "" in message else len(message)
    return sorted(line.split(": ", 1)[0] for line in message[1:blank])


async def test_the_documented_exchange_is_what_the_relay_and_the_sdk_do(relay: Relay) -> None:
    recorded = await http_exchange.record(relay.url, relay.codes[0])
    steps = documented_steps(DOC.read_text("utf-8"))
    assert [s.number for s in steps] == list(range(1, len(steps) + 1)), "steps are numbered 1, 2, 3, …"
    assert len(steps) == len(recorded), f"the doc has {len(steps)} requests, the exchange {len(recorded)}; {REGENERATE}"
    for step, exchange in zip(steps, recorded, strict=True):
        where = f"step {step.number} ({step.method} {step.path}); {REGENERATE}"
        assert (step.method, http_exchange.template(step.path)) == (
            exchange.method, http_exchange.template(exchange.path)), where
        assert step.status == exchange.status, where
        if step.request_headers is None:  # "as in N": the same shapes as a step shown whole
            continue
        assert step.request_headers == _recorded_headers(exchange, request=True), where
        assert step.response_headers == _recorded_headers(exchange, request=False), where
        assert step.request == http_exchange.request_shape(exchange), where
        assert step.response == http_exchange.response_shape(exchange), where


async def test_a_repeated_step_points_at_a_step_of_the_same_route() -> None:
    text = DOC.read_text("utf-8")
    steps = {s.number: s for s in documented_steps(text)}
    for number, method, path, earlier in re.findall(r"^\*\*(\d+)\.\*\* (?:[^`\n]*: )?`(\S+) (\S+)` → \d+, as in (\d+)\.$",
                                                   text, flags=re.M):
        shown = steps[int(earlier)]
        assert shown.request_headers is not None and int(earlier) < int(number)
        assert (shown.method, http_exchange.template(shown.path)) == (method, http_exchange.template(path))


def _route_key(method: str, path: str) -> tuple[str, str]:
    return method, re.sub(r"\{[^}]+\}", "{}", path)


def test_the_route_table_names_every_route_and_only_those() -> None:
    table = [line for line in DOC.read_text("utf-8").splitlines() if line.startswith("| `")]
    documented = {_route_key(m, p) for row in table
                  for m, p in re.findall(r"`(GET|POST|PATCH|HEAD|DELETE|OPTIONS|PUT) (/[^`\s]*)`", row.split(" | ")[0])}
    routes = {_route_key(method, path) for method, path, _ in ROUTES}
    assert routes - documented == set(), "routes missing from the table in docs/http-api.md"
    assert documented - routes == set(), "the table in docs/http-api.md names routes the relay does not have"


@pytest.mark.parametrize("value, short", [
    ("dev_0123456789abcdef.c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0", "dev_0123456789abcdef.…"),
    ("0" * 64, "00000000…"),
    ("RYl3+BXzAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "RYl3+BXz…"),
    ("per_0123456789abcdef", "per_0123456789abcdef"),
    ("Waiting for your mediator's review", "Waiting for your mediator's review"),
])
def test_shortening_keeps_ids_and_words_and_cuts_secrets_and_keys(value: str, short: str) -> None:
    assert http_exchange.shorten(value) == short


# -- what the conventions promise about 429 -------------------------------------------------------


async def test_a_429_says_when_to_retry_in_retry_after_when_the_relay_knows(tmp_path: Path, aiohttp_server: Any) -> None:
    """Regression: no 429 carried Retry-After (only 503 and 507 did), so a client had to dig the
    time out of each problem's own extras. Now a kiosk-code lockout and a spent items-per-day
    quota say it in the header too; a pending-bytes quota, which frees up only as the mediator
    decides, does not."""
    clock = MovableClock()
    codes: list[str] = []
    app = create_app(Settings(data_dir=tmp_path / "data", kiosk_code_attempts_per_terminal=1, quota_items_per_day=2,
                              quota_pending_bytes=1024), clock=clock, bootstrap_printer=codes.append)
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    world = await build_world(url, codes[0], kdf=TEST_KDF)
    recorder = http_exchange.Recorder()
    async with aiohttp.ClientSession(trace_configs=[recorder.trace]) as http:
        terminal = await world.client(world.terminal_token, http).__aenter__()
        for _ in range(2):
            with pytest.raises(ProblemError):
                await terminal.call("POST", "/v1/kiosk/identify", json_body={"code": "2222-2222"})
        await terminal.close()
        locked = recorder.exchanges[-1]
        assert locked.status == 429 and json.loads(locked.response_body)["retry_after_seconds"] == 900
        assert locked.response_headers["Retry-After"] == "900"

        victim = await world.client(str(world.victim.device_token), http).__aenter__()
        await victim.login(world.victim.person_id, world.victim.identity)
        await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"x" * 600))
        with pytest.raises(ProblemError) as waiting:  # 2 x 645 sealed bytes would pass 1,024
            await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"y" * 600))
        assert waiting.value.problem["quota"] == "pending_bytes"
        assert "Retry-After" not in recorder.exchanges[-1].response_headers
        clock.advance(hours=1)
        mediator = await world.session(world.mediator, http=http)
        await mediator.withhold((await mediator.call("GET", "/v1/review/queue"))[0]["id"], "not-ready")
        await mediator.close()
        await victim.login(world.victim.person_id, world.victim.identity)  # the hour ended the idle session
        await victim.send(case_id=world.case_id, recipient="mediators", src=io.BytesIO(b"y" * 100))
        with pytest.raises(ProblemError) as daily:
            await victim.send(case_id=world.case_id, recipient="mediators", src=io.BytesIO(b"y" * 100))
        assert daily.value.problem["quota"] == "items_per_day"
        refused = recorder.exchanges[-1]
        assert refused.status == 429
        assert int(refused.response_headers["Retry-After"]) in range(23 * 3600 - 5, 23 * 3600 + 1)
        await victim.close()


async def test_a_content_route_answers_one_byte_range(world: Any) -> None:
    """What the conventions say of content downloads: 206 with Content-Range for one range."""
    victim = await world.session(world.victim)
    mediator = await world.session(world.mediator)
    try:
        sent = await victim.send(case_id=world.case_id, recipient="mediators", src=io.BytesIO(b"z" * 1000))
        async with aiohttp.ClientSession() as http:
            headers = {**mediator._headers(), "Range": "bytes=28-"}
            async with http.get(f"{world.url}/v1/items/{sent['id']}/content", headers=headers) as response:
                body = await response.read()
                assert response.status == 206 and response.headers["Content-Type"] == "application/octet-stream"
                assert response.headers["Content-Range"] == f"bytes 28-{1045 - 1}/1045" and len(body) == 1045 - 28
                assert response.headers["ETag"] and response.headers["Cache-Control"] == "no-store"
    finally:
        await victim.close()
        await mediator.close()


# -- the examples in the prose ------------------------------------------------------------------


def test_the_documented_login_bytes_are_the_prefix_and_the_canonical_statement() -> None:
    line = next(x.strip() for x in DOC.read_text("utf-8").splitlines() if x.strip().startswith("mediation-relay/v2/login"))
    prefix, _, canonical = line.partition("\\0")
    assert (prefix + "\0").encode() == documents.Domain.LOGIN.value
    statement = json.loads(canonical)
    assert documents.canonical_json(statement).decode() == canonical
    assert set(statement) == set(documents.LoginStatement.model_fields)


def test_the_documented_profile_is_what_the_client_keeps() -> None:
    text = DOC.read_text("utf-8")
    section = text[text.index("## The profile and the trust root"):text.index("## The enrollment chain")]
    example = json.loads(re.search(r"```json\n(.*?)\n\s*```", section, flags=re.S).group(1))  # type: ignore[union-attr]
    assert set(example) == {f.name for f in dataclasses.fields(Profile)}
    assert Profile.from_dict(example).device_token.startswith(example["device_id"] + ".")
    table = set(re.findall(r"^\s*\| `(\w+)` \|", section, flags=re.M))
    assert table == set(example)
