"""``relay desk``, ``relay kiosk`` and ``relay app`` as a person starts them: the command prints a
one-time link that opens the interface in Chromium; decrypted media only ever touch memory, and
what an interface that was killed left there is swept at the next start."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from relay.client.scenario import World
from relay.client.web.app import SCRATCH_PREFIX, NoMemoryScratch, memory_scratch_parent
from relay.client.web.state import STATE
from tests.web.support import chromium, interface, profile_for, shot


@pytest.mark.parametrize("kind", ["kiosk", "app", "desk"])
async def test_the_command_prints_a_link_that_opens_the_interface(world: World, tmp_path: Path, kind: str) -> None:
    who = {"kiosk": None, "app": world.victim, "desk": world.mediator}[kind]
    profile = profile_for(tmp_path / kind, world, who, kind)  # type: ignore[arg-type]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "relay", "--lang", "en", kind, "--profile", str(profile), "--no-browser",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env={**os.environ, "RELAY_LANG": "en"})
    assert process.stderr is not None
    seen = ""
    try:
        async with asyncio.timeout(60):
            while (link := re.search(r"(http://relay-[0-9a-f]+\.localhost:\d+/start/\S+)", seen)) is None:
                line = (await process.stderr.readline()).decode()
                assert line, f"relay {kind} stopped without printing its link: {seen}"
                seen += line
        async with chromium(tmp_path / "browser") as browser:
            page = await browser.new_page()
            await page.goto(link.group(1))
            assert await page.locator("#passphrase").count() == 1
            assert (await page.locator("#code").count() == 1) == (kind == "kiosk")
            await shot(page, f"command-{kind}")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(30):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


def test_without_a_memory_backed_directory_the_interface_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(NoMemoryScratch):
        memory_scratch_parent(tmp_path / "no-such-directory")


async def test_what_a_killed_interface_left_in_memory_is_swept_at_the_next_start(world: World,
                                                                                 tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    parent = memory_scratch_parent()
    left = parent / f"{SCRATCH_PREFIX}{gone.pid}-killed"
    left.mkdir()
    (left / "original").write_bytes(b"decrypted video left by a killed interface")
    alive = parent / f"{SCRATCH_PREFIX}{os.getpid()}-running"  # this process is alive: not ours to touch
    alive.mkdir()
    try:
        profile = profile_for(tmp_path / "kiosk", world, None, "kiosk")
        async with interface(profile, "kiosk") as kiosk:
            scratch = kiosk.app[STATE].scratch
            assert scratch is not None and scratch.parent == parent
            assert not left.exists()
            assert alive.exists()
        assert not scratch.exists()
    finally:
        for path in (left, alive):
            if path.exists():
                for child in path.iterdir():
                    child.unlink()
                path.rmdir()
