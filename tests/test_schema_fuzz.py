"""Schema fuzz: schemathesis against ``/openapi.json`` of a real relay, signed in as every role.

The relay runs for real on loopback (aiohttp's own server in a thread, SQLite and blobs in a temp
dir) with a case set up through the SDK (``build_world``). For each role (the coordinator at the
console, the mediator at the desk, a participant on their own device, a participant at an
institution's terminal) schemathesis reads the document, generates requests for every operation
that role may call (examples, boundary values, random fuzzing, and stateful sequences that follow
the document's links) and checks every answer: no 5xx, a status the document lists, the content
type it lists, a body that fits its schema (problem bodies included), and that invalid input is
refused. ``ignored_auth`` also replays each request without credentials and expects a refusal.

Path ids are drawn both as generated and from the real objects set up here (tests/fuzz_hooks.py),
so requests get past the lookups. The operations that end sessions (sign-out, revoking a person
or a device) run after the others, each caller on a fresh relay.

Each run is bounded by ``RELAY_FUZZ_EXAMPLES`` examples per operation (default 8: under a minute
for all eight runs on two cores); set it higher for a longer hunt, and ``RELAY_FUZZ_SEED`` for
other cases: ``RELAY_FUZZ_EXAMPLES=100 .venv/bin/python -m pytest tests/test_schema_fuzz.py -s``
(about four minutes). Each run prints its figure (cases generated and passed, seconds); a failure
prints schemathesis's report with a curl line that reproduces each case.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from relay.client.kdf import TEST_KDF
from relay.client.scenario import World, build_world
from relay.server import openapi
from relay.server.app import create_app
from relay.server.settings import Settings
from relay.wire import DEVICE_HEADER

HERE = Path(__file__).resolve().parent
EXAMPLES = int(os.environ.get("RELAY_FUZZ_EXAMPLES", "8"))
SEED = int(os.environ.get("RELAY_FUZZ_SEED", "20261127"))
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance,negative_data_rejection,missing_required_header,ignored_auth")
# Not run, and why:
# - positive_data_acceptance: a request that fits the schema may still be refused on its merits
#   (an id that does not exist, a signature that does not verify): 404 and 422 are right there.
# - unsupported_method, allow_header_conformance: the relay answers a wrong method with its
#   not-found problem (relay.server.problems: 405 -> not-found), saying nothing about what exists.
# - use_after_free, ensure_resource_availability, object_level_authorization: need resources the
#   fuzzer can create and delete; nothing here can be created without a signature it cannot make
#   (tests/test_authorization.py covers every route against every caller instead).
# Signing out and revoking end the sessions the fuzz runs on (schemathesis reuses ids it saw in
# answers, so it does revoke the coordinator's own console): they get a run of their own, last.
ENDINGS = ("delete_v1_auth_session", "post_v1_people_person_id_revoke", "post_v1_devices_device_id_revoke")


class LiveRelay:
    """A real relay on 127.0.0.1 in its own thread and event loop, for a client in another process."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.codes: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="relay", daemon=True)
        self.runner: web.AppRunner | None = None
        self.url = ""

    def run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout=120)

    async def _start(self) -> str:
        app = create_app(Settings(data_dir=self.data_dir), bootstrap_printer=self.codes.append)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self.thread.start()
        self.url = self.run(self._start())

    def stop(self) -> None:
        if self.runner is not None:
            self.run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()  # its self-pipe sockets too


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveRelay, dict[str, list[str]], dict[str, dict[str, str]]]]:
    """A fresh relay and case for each run: the coordinator's fuzz closes cases, withdraws
    consent and revokes people (with ids it read from answers), which would leave the next
    caller nothing to reach."""
    relay = LiveRelay(tmp_path / "relay-data")
    relay.start()
    try:
        world = relay.run(build_world(relay.url, relay.codes[0], kdf=TEST_KDF))
        roles, known = relay.run(_sign_in_everyone(world))
        yield relay, known, roles
    finally:
        relay.stop()


async def _sign_in_everyone(world: World) -> tuple[dict[str, dict[str, str]], dict[str, list[str]]]:
    """Headers for each role, signed in through the SDK (the sessions stay open for the fuzzer),
    and the ids of real objects, which the fuzzer uses beside the ids it makes up."""
    signed_in = {
        "coordinator": await world.session(world.coordinator),
        "mediator": await world.session(world.mediator),
        "participant": await world.session(world.victim),
        "terminal": await world.session(world.offender, on_terminal=True),
    }
    coordinator, victim = signed_in["coordinator"], signed_in["participant"]
    mediator, offender = signed_in["mediator"], signed_in["terminal"]
    # Something in every list: a letter released and read, one returned, one waiting, a note to
    # the mediators; a condition with an approval; an unfinished upload.
    sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"A letter."))
    await mediator.release(sent["id"])
    await offender.fetch(sent["id"], io.BytesIO())
    back = await offender.send(case_id=world.case_id, recipient=world.victim.person_id, src=io.BytesIO(b"A reply."))
    await mediator.return_to_sender(back["id"], "Could we talk first?")
    waiting = await offender.send(case_id=world.case_id, recipient=world.victim.person_id, src=io.BytesIO(b"More."))
    note = await victim.send(case_id=world.case_id, recipient="mediators", src=io.BytesIO(b"Can we talk?"))
    condition = await coordinator.call("POST", "/v1/conditions", json_body={
        "kind": "court_order", "reference": "Fuzz order", "restricted_id": world.offender.person_id,
        "protected_people": [world.victim.person_id], "direction": "both", "effective_from": "2026-01-01T00:00:00Z",
        "program_exception": True})
    approval = await coordinator.call("POST", "/v1/approvals", json_body={
        "case_id": world.case_id, "condition_id": condition["id"], "directions": ["from_restricted"],
        "kinds": ["letter"], "valid_until": "2099-01-01T00:00:00Z"})
    upload = await victim.create_upload(1024)
    devices = [d["id"] for d in await coordinator.call("GET", "/v1/devices")]
    known = {
        "case_id": [world.case_id],
        "person_id": [p.person_id for p in (world.coordinator, world.mediator, world.victim, world.offender)],
        "item_id": [sent["id"], back["id"], waiting["id"], note["id"]],
        "device_id": devices, "condition_id": [condition["id"]], "approval_id": [approval["id"]],
        "upload_id": [upload.rsplit("/", 1)[-1]],
    }
    headers = {role: {DEVICE_HEADER: str(c.device_token), "Authorization": f"Bearer {c.session_token}"}
               for role, c in signed_in.items()}
    for client in signed_in.values():
        client.session_token = None  # its connections close; the session stays open for the fuzzer
        await client.close()
    return headers, known


# What each signed-in caller is: its device kind and its person's role.
CALLERS = {"coordinator": ("coordinator_console", "coordinator"), "mediator": ("mediator_desk", "mediator"),
           "participant": ("participant_device", "participant"), "terminal": ("terminal", "participant")}


def operations_for(role: str, *, endings: bool = False) -> list[str]:
    """The operations this caller's guard lets through (from the document's own access records):
    all but those that end its session, or only those."""
    device, person = CALLERS[role]
    document = json.loads(openapi.document())
    found = []
    for ops in document["paths"].values():
        for op in ops.values():
            access = op["x-relay-access"]
            if (op["operationId"] in ENDINGS) != endings:
                continue
            if access["public"] or ((access["devices"] is None or device in access["devices"])
                                    and (access["roles"] is None or person in access["roles"])):
                found.append(op["operationId"])
    return found


# Every caller, then the operations that end sessions, each on a fresh relay.
RUNS = [(role, False) for role in CALLERS] + [(role, True) for role in CALLERS]


@pytest.mark.parametrize(("role", "endings"), RUNS, ids=[f"{r}{'-endings' if e else ''}" for r, e in RUNS])
def test_schema_fuzz(role: str, endings: bool, live: tuple[LiveRelay, dict[str, list[str]], dict[str, dict[str, str]]],
                     tmp_path: Path) -> None:
    relay, known, roles = live
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(HERE / "schemathesis.toml"),
               "run", relay.url + "/openapi.json",
               "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--workers", "1",
               # Stateful sequences need links between the selected operations; the endings have none.
               "--phases", "examples,coverage,fuzzing" + ("" if endings else ",stateful"),
               "--suppress-health-check", "all",
               "--request-timeout", "30"]
    for name, value in roles[role].items():
        command += ["--header", f"{name}: {value}"]
    for operation_id in operations_for(role, endings=endings):
        command += ["--include-operation-id", operation_id]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_TELEMETRY": "false",
           "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks", "RELAY_FUZZ_IDS": json.dumps(known),
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    started = time.monotonic()
    # cwd: schemathesis keeps a cache in its working directory.
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    took = time.monotonic() - started
    summary = [line for line in done.stdout.splitlines() if line.strip()][-12:]
    print(f"\nschema fuzz as {role}: {EXAMPLES} examples per operation, {took:.1f} s\n" + "\n".join(summary))
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-4000:]
    tested = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert tested is not None and int(tested[2]) == int(tested[1]) > 0, summary  # it did run, and every case passed
