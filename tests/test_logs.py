"""Issue 13, item 5: the relay's log is one JSON object a line; every line written while a request
is served carries that request's id, which is also in the response's ``X-Request-Id`` header and
in its problem document; and a whole exchange leaves no token, key, passphrase, content, address,
name or id a request carried anywhere in the log, debug lines included.

The relay runs in-process behind its own server (``relay.server.serving.running``, as ``relay
serve`` runs it) on loopback with real SQLite. A handler on the root logger, at DEBUG, formats
every record with the relay's own JSON formatter; and, independently of the relay's context
variable, notes whether the record was written inside the task aiohttp serves a request in.

Ids (of people, cases, items, devices, institutions) count as request values here: the access
line names the route's template, never the path, so none of them may appear.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import json
import logging
import re
import secrets
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relay import envelope
from relay.client.kdf import TEST_KDF
from relay.client.scenario import build_world
from relay.server import logs
from relay.server.app import create_app
from relay.server.services import periodic
from relay.server.serving import running
from relay.server.settings import Settings

from .conftest import MovableClock

ID_SHAPE = re.compile(r"[0-9a-f]{16}")


@dataclass
class Line:
    text: str
    logger: str
    task: object | None  # the aiohttp request task it was written in, if any (held: ids stay unique)
    parsed: dict[str, Any] = field(default_factory=dict)


class Capture(logging.Handler):
    """Every record, formatted as the relay formats it, with the request task it came from."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logs.JsonFormatter())
        self.lines: list[Line] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # a thread without a loop
            task = None
        coro = task.get_coro() if task is not None else None
        in_request = getattr(coro, "__qualname__", "") == "RequestHandler._handle_request"
        self.lines.append(Line(self.format(record), record.name, task if in_request else None))


@pytest.fixture
def capture() -> Iterator[Capture]:
    root = logging.getLogger()
    handler = Capture()
    level, quieted = root.level, {name: logging.getLogger(name).level for name in logs.QUIETER}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logs.quiet()  # what logs.configure does for `relay serve`
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for name, old in quieted.items():
            logging.getLogger(name).setLevel(old)


@dataclass
class Seen:
    """What the client saw of each response: (method, path, status, X-Request-Id)."""
    responses: list[tuple[str, str, int, str | None]] = field(default_factory=list)

    def session(self) -> aiohttp.ClientSession:
        trace = aiohttp.TraceConfig()

        async def ended(_: Any, __: Any, params: aiohttp.TraceRequestEndParams) -> None:
            self.responses.append((params.method, params.url.path, params.response.status,
                                   params.response.headers.get("X-Request-Id")))

        trace.on_request_end.append(ended)
        return aiohttp.ClientSession(trace_configs=[trace])


@dataclass
class Served:
    url: str
    host: str
    port: int
    data_dir: Path
    codes: list[str]


@pytest.fixture
async def served(tmp_path: Path, capture: Capture) -> AsyncIterator[Served]:
    settings = Settings(data_dir=tmp_path / "relay-data")
    codes: list[str] = []
    app = create_app(settings, clock=MovableClock(), bootstrap_printer=codes.append)
    async with running(app, settings, host="127.0.0.1", port=0) as (host, port):
        yield Served(f"http://{host}:{port}", host, port, settings.data_dir, codes)


async def problem_of(response: aiohttp.ClientResponse) -> dict[str, Any]:
    assert response.content_type == "application/problem+json"
    problem: dict[str, Any] = await response.json(content_type=None)
    assert problem["request_id"] == response.headers["X-Request-Id"]
    return problem


async def test_a_whole_exchange_logs_json_with_request_ids_and_no_value(
        served: Served, capture: Capture, tmp_path: Path) -> None:
    marker = f"MARKER{secrets.token_hex(8)}"
    letter = f"Dear reader, {marker} is the word only you should see.\n".encode()
    video = secrets.token_bytes(300_000)
    seen = Seen()
    needles: dict[str, str] = {"client address": "127.0.0.1", "marker": marker}
    async with seen.session() as http:
        world = await build_world(served.url, served.codes[0], kdf=TEST_KDF, http=http)
        coordinator = await world.session(world.coordinator, http=http)
        victim = await world.session(world.victim, http=http)
        mediator = await world.session(world.mediator, http=http)
        offender = await world.session(world.offender, on_terminal=True, http=http)
        try:
            # Names and labels typed in.
            place = await coordinator.call("POST", "/v1/institutions", json_body={"name": f"Prison {marker}-place"})
            kiosk = await coordinator.call("POST", "/v1/devices", json_body={
                "kind": "terminal", "institution_id": place["id"], "label": f"Kiosk {marker}-label"})
            # A letter: submitted, reviewed, released, fetched (with its receipt).
            sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(letter))
            opened = io.BytesIO()
            await mediator.open_item(sent["id"], opened)
            assert opened.getvalue() == letter
            await mediator.release(sent["id"])
            got = io.BytesIO()
            view = await offender.fetch(sent["id"], got)
            assert got.getvalue() == letter and view["state"] == "delivered"
            # A video over the resumable (tus) path.
            clip = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                     src=io.BytesIO(video), kind="video", content_type="video/mp4", resumable=True)
            assert clip["state"] == "pending_review"
            tokens = [victim.session_token, mediator.session_token, offender.session_token,
                      coordinator.session_token]
            ids = [world.case_id, world.institution_id, place["id"], kiosk["id"], sent["id"], clip["id"],
                   *(p.person_id for p in (world.coordinator, world.mediator, world.victim, world.offender))]

            # Failures: each a problem naming its request, like its header.
            failures: dict[str, str] = {}
            bad_token = f"tok{marker}badtoken"
            async with http.get(f"{served.url}/v1/inbox", headers={
                    "Authorization": f"Bearer {bad_token}", "X-Relay-Device": world.victim.device_token or ""}) as r:
                assert r.status == 401
                failures["bad token"] = (await problem_of(r))["request_id"]
            async with http.post(f"{served.url}/v1/auth/challenge", data=f'{{"person_id": "{marker}-json',
                                 headers={"Content-Type": "application/json",
                                          "X-Relay-Device": world.victim.device_token or ""}) as r:
                assert r.status == 400
                failures["bad json"] = (await problem_of(r))["request_id"]
            async with http.post(f"{served.url}/v1/institutions", json={"name": f"{marker}-forbidden"},
                                 headers=victim._headers()) as r:
                assert r.status == 403
                failures["forbidden"] = (await problem_of(r))["request_id"]
            async with http.get(f"{served.url}/v1/items/{sent['id']}x/delivery", headers=offender._headers()) as r:
                assert r.status == 404
                failures["not found"] = (await problem_of(r))["request_id"]
            # A problem the file response writes itself (ProblemStatuses): a Range past the end.
            async with http.get(f"{served.url}/v1/items/{sent['id']}/delivery/content",
                                headers={**offender._headers(), "Range": "bytes=99999999-"}) as r:
                assert r.status == 416
                failures["range"] = (await problem_of(r))["request_id"]
            # Not behind a proxy: even a tame id from the caller is replaced (a client cannot make
            # its lines carry another request's id); junk is never echoed either.
            async with http.get(f"{served.url}/healthz", headers={"X-Request-Id": "proxy-0123-abcd"}) as r:
                assert ID_SHAPE.fullmatch(r.headers["X-Request-Id"])
            async with http.get(f"{served.url}/nothing", headers={"X-Request-Id": f"{marker} <script>"}) as r:
                problem = await problem_of(r)
                assert ID_SHAPE.fullmatch(problem["request_id"]) and marker not in json.dumps(problem)
                failures["junk id"] = problem["request_id"]
        finally:
            for client in (coordinator, victim, mediator, offender):
                await client.close()

    # A request aiohttp's own parser refuses gets an id, a header and a problem naming it too.
    reader, writer = await asyncio.open_connection(served.host, served.port)
    writer.write(f"GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Relay-Device: {world.victim.device_token}{'A' * 9000}\r\n\r\n"
                 .encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    refused = json.loads(body)
    assert refused["status"] == 431 and f"X-Request-Id: {refused['request_id']}".encode() in head
    await asyncio.sleep(0.05)  # its access line is written once the response is out

    # -- every line is one JSON object ----------------------------------------------------------
    assert len(capture.lines) > 50
    for line in capture.lines:
        line.parsed = json.loads(line.text)
        assert "\n" not in line.text
        assert {"time", "level", "logger", "message"} <= line.parsed.keys(), line.text
        assert line.parsed["time"].endswith("Z") and line.parsed["logger"] == line.logger

    # -- ids: every response had one, each its own ----------------------------------------------
    header_ids = [rid for _, _, _, rid in seen.responses]
    assert len(seen.responses) > 60 and all(header_ids)
    assert len(set(header_ids)) == len(header_ids)
    assert all(ID_SHAPE.fullmatch(rid) for rid in header_ids if rid != "proxy-0123-abcd")
    every_request = set(header_ids) | {refused["request_id"]}

    # Exactly one access line per request, naming its id, route template, status, bytes and time.
    access = [line.parsed for line in capture.lines if line.logger == "aiohttp.access"]
    assert sorted(a["request_id"] for a in access) == sorted(every_request)
    for a in access:
        assert {"method", "route", "status", "bytes", "duration_ms"} <= a.keys(), a
        assert "{" in a["route"] or a["route"] in ("/healthz", "(no route)", "(not routed)") or "/" in a["route"]
    by_id = {a["request_id"]: a for a in access}
    assert by_id[failures["forbidden"]]["route"] == "/v1/institutions"
    assert by_id[failures["not found"]]["route"] == "/v1/items/{item_id}/delivery"
    assert by_id[refused["request_id"]]["status"] == 431

    # Every line written inside a request's task carries that request's id, and only that one.
    tasks: dict[object, set[str | None]] = {}
    for line in capture.lines:
        if line.task is not None:
            tasks.setdefault(line.task, set()).add(line.parsed.get("request_id"))
    assert len(tasks) == len(every_request)
    for ids_in_task in tasks.values():
        assert len(ids_in_task) == 1 and None not in ids_in_task
    # Lines other than the access line (the problem mapping's) carry it as well.
    for rid in failures.values():
        named = [line for line in capture.lines if line.parsed.get("request_id") == rid]
        assert {line.logger for line in named} >= {"aiohttp.access", "relay.server.problems"}, rid
    # And no line outside a request borrows a request's id: background work names its job.
    for line in capture.lines:
        if line.task is None and line.logger.startswith(("relay", "storage", "media")):
            assert "request_id" not in line.parsed and line.parsed.get("job_id"), line.text
    assert any(line.parsed.get("job_id", "").startswith("db-writer-") for line in capture.lines)

    # -- and no value -----------------------------------------------------------------------------
    for person in (world.coordinator, world.mediator, world.victim, world.offender):
        sign_seed, box_secret = bytes(person.identity.signing_key), bytes(person.identity.box_key)
        for key in (sign_seed, box_secret):
            needles[f"{person.label} key (hex)"] = key.hex()
            needles[f"{person.label} key (base64)"] = envelope.b64e(key)
            needles[f"{person.label} key (std base64)"] = base64.b64encode(key).decode()
    needles["passphrase"] = str(world.offender.passphrase)
    needles["kiosk code"] = str(world.offender.kiosk_code)
    for n, token in enumerate((world.terminal_token, world.victim.device_token, world.mediator.device_token,
                               world.coordinator.device_token)):
        needles[f"device token {n}"] = str(token).split(".", 1)[1]
    for n, token in enumerate(tokens):
        needles[f"session token {n}"] = str(token)
    needles["bad token"] = bad_token
    needles["letter"] = letter.decode()[:20]
    for n, item_id in enumerate(ids):
        needles[f"id {n}"] = item_id
    blobs = [p.read_bytes() for p in sorted((served.data_dir / "blobs").rglob("*")) if p.is_file()]
    assert blobs
    for n, blob in enumerate(blobs):
        piece = blob[len(blob) // 2: len(blob) // 2 + 24]
        needles[f"ciphertext {n} (hex)"] = piece.hex()
        needles[f"ciphertext {n} (base64)"] = base64.b64encode(piece).decode()
        needles[f"ciphertext {n} (urlsafe)"] = envelope.b64e(piece)
    text = "\n".join(line.text for line in capture.lines)
    leaked = [what for what, needle in needles.items() if needle and needle in text]
    assert leaked == [], leaked


async def test_background_runs_log_under_a_job_id_of_their_own_never_a_requests(capture: Capture) -> None:
    stop, runs = asyncio.Event(), []

    async def run() -> None:  # the periodic runner of the purge and the scrub, with a run that fails
        runs.append(logs.JOB_ID.get())
        logging.getLogger("relay.server.services.retention").info("a run")
        if len(runs) == 2:
            stop.set()
        raise RuntimeError("the disk said no")

    await periodic.every(0.01, stop, run, "retention run")
    lines = [json.loads(line.text) for line in capture.lines if line.logger.startswith("relay.server.services")]
    assert [line["message"] for line in lines][:2] == [
        "a run", "retention run failed (RuntimeError); it runs again in 0 s"]
    assert all(re.fullmatch(r"retention-run-[0-9a-f]{8}", line["job_id"]) and "request_id" not in line
               for line in lines)
    assert len(set(runs)) == 2 and lines[0]["job_id"] == runs[0]  # one id a run
    assert logs.JOB_ID.get() is None  # nothing leaks out of the run


def test_the_text_format_carries_the_same_ids() -> None:
    formatter = logs.formatter("text")
    record = logging.LogRecord("relay.x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    token = logs.REQUEST_ID.set("abcdef0123456789")
    try:
        line = formatter.format(record)
    finally:
        logs.REQUEST_ID.reset(token)
    assert line.endswith("INFO    relay.x [abcdef0123456789] hello there") and line[:24].endswith("Z")
    with logs.job("purge") as job:
        assert f"[{job}]" in formatter.format(record) and job in logs.formatter("json").format(record)


def test_an_exception_is_logged_by_its_type_and_place_never_its_message() -> None:
    try:
        raise ValueError("could not use 'tok_hunter2'")
    except ValueError:
        record = logging.LogRecord("relay.x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    for kind in logs.FORMATS:
        line = logs.formatter(kind).format(record)
        assert "builtins.ValueError at test_logs.py:" in line
        assert "hunter2" not in line and "Traceback" not in line


def test_a_python_warning_is_logged_by_its_category_and_place_never_its_text() -> None:
    """``captureWarnings`` turns warnings into lines; a warning's text can quote a request (aiohttp's
    multipart warnings carry the client's Content-Disposition header, a file name in it)."""
    import warnings
    text = warnings.formatwarning('form-data; name="meta"; filename="Jane Doe letter"', RuntimeWarning,
                                  "/x/site-packages/aiohttp/multipart.py", 135)
    record = logging.LogRecord("py.warnings", logging.WARNING, __file__, 1, "%s", (text,), None)
    for kind in logs.FORMATS:
        line = logs.formatter(kind).format(record)
        assert "RuntimeWarning at multipart.py:135" in line
        assert "Jane" not in line and "form-data" not in line


async def test_only_a_relay_told_to_trust_its_proxys_request_id_takes_it(tmp_path: Path, aiohttp_client: Any) -> None:
    """With trust_request_id (a proxy that sets X-Request-Id itself) its tame id is kept, so both
    logs correlate; otherwise, behind a proxy or not, the relay always uses its own."""
    for trusted, behind, expected in ((True, True, "proxy-0123-abcd"), (False, True, None), (False, False, None)):
        app = create_app(Settings(data_dir=tmp_path / f"{trusted}{behind}", behind_proxy=behind,
                                  trust_request_id=trusted), clock=MovableClock(),
                         bootstrap_printer=lambda code: None)
        client = await aiohttp_client(app)
        response = await client.get("/healthz", headers={"X-Request-Id": "proxy-0123-abcd"})
        got = response.headers["X-Request-Id"]
        assert got == expected if expected else (ID_SHAPE.fullmatch(got) and got != "proxy-0123-abcd")
        junk = await client.get("/healthz", headers={"X-Request-Id": "has space <script>"})
        assert ID_SHAPE.fullmatch(junk.headers["X-Request-Id"])


def test_incoming_request_ids_are_taken_only_when_tame() -> None:
    assert logs.accept("proxy-0123-abcd") == "proxy-0123-abcd"
    for junk in (None, "", "short", "a" * 65, "has space 123", "semi;colon12", "ümlaut-12345", "line\nbreak123"):
        assert ID_SHAPE.fullmatch(logs.accept(junk)), junk


def test_relay_serve_writes_json_lines_and_config_check_shows_the_format(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    check = subprocess.run([sys.executable, "-m", "relay", "--lang", "en", "config", "check", "--data-dir",
                            str(data_dir), "--log-format", "text"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert 'log_format = "text"' in check.stdout and 'log_level = "info"' in check.stdout

    lines = []
    with subprocess.Popen([sys.executable, "-m", "relay", "serve", "--data-dir", str(data_dir),
                           "--port", str(free_port())], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          text=True) as process:
        try:
            assert process.stderr is not None
            for raw in process.stderr:  # ends if the relay stops
                lines.append(json.loads(raw))  # every line is one JSON object
                if lines[-1]["message"].startswith("Running on"):
                    break
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert lines and all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert any(line.get("job_id", "").startswith("db-writer-") for line in lines)  # migrations, at start


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_asyncios_reports_keep_their_words_never_the_reprs_they_quote() -> None:
    """asyncio's event loop logs what nobody awaited with the objects' reprs: "Future exception
    was never retrieved" then ``future: <Future finished exception=ValueError('...')>``, the
    exception's message included; "Exception in callback" with the callback's arguments. Only
    its plain words are kept; the exception's type and place are logged as for any other."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    logging.getLogger("asyncio").addHandler(handler)
    loop = asyncio.new_event_loop()
    try:
        def failed(letter: str) -> None:
            raise ValueError(f"from {letter}")

        future = loop.create_future()
        future.set_exception(ValueError("Jane Doe's letter"))
        loop.call_soon(failed, "Jane Doe")
        loop.call_soon(loop.stop)
        loop.run_forever()  # the callback's failure is reported by the loop itself
        del future  # never retrieved: reported when collected
        gc.collect()
    finally:
        loop.close()
        logging.getLogger("asyncio").removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    said = {line["message"]: line.get("exception", "") for line in lines
            if line["logger"] == "asyncio" and line["level"] == "error"}
    # The callback's name stays (up to its first underscore); its arguments do not.
    assert set(said) == {"Exception in callback test", "Future exception was never retrieved"}, lines
    assert all(exception.startswith("builtins.ValueError") for exception in said.values()), said
    assert "Jane" not in stream.getvalue()
