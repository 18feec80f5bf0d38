"""``relay demo --keep DIR``: after the whole exchange, the relay keeps running and the mediator's
desk opens at a printed link, with a letter waiting that hides a line; the desk shows it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from relay.client.kdf import PRODUCTION_KDF
from relay.client.profile import IDENTITY_FILE
from relay.envelope import EnvelopeError
from tests.web.support import http_client


async def test_demo_keep_leaves_the_desk_open_with_a_letter_to_review(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "relay", "--lang", "en", "demo", "--keep", str(tmp_path / "kept"), "--no-browser",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env={**os.environ, "RELAY_LANG": "en"})
    assert process.stderr is not None
    seen = ""
    try:
        async with asyncio.timeout(240):
            while "Ctrl-C" not in seen:
                line = (await process.stderr.readline()).decode()
                assert line, seen
                seen += line
        link = re.search(r"(http://relay-[0-9a-f]+\.localhost:\d+/start/\S+)", seen)
        secret = re.search(r"The mediator's passphrase: (\S+)", seen)
        assert link and secret, seen
        base = link.group(1).split("/start/")[0]
        async with http_client() as http:
            await (await http.get(link.group(1))).release()
            page = await (await http.get(base + "/")).text()
            token = re.search(r'name="csrf" value="([^"]+)"', page)
            assert token
            queue = await (await http.post(base + "/unlock", data={"passphrase": secret.group(1),
                                                                   "csrf": token.group(1)})).text()
            item = re.search(r'href="/items/(itm_[0-9a-f]+)" class="open-item"', queue)
            assert item, queue
            letter = await (await http.get(f"{base}/items/{item.group(1)}")).text()
            assert "This letter contains 2 hidden characters" in letter and "555-0142" in letter
        for name in ("desk", "kiosk", "app"):
            assert (tmp_path / "kept" / name / "profile.json").is_file()
        # Each person has a passphrase of their own: the app's opens the app's keys, not the desk's.
        app = re.search(r"relay app --profile \S+  \(passphrase (\S+)\)", seen)
        assert app and app.group(1) != secret.group(1), seen
        sealed = (tmp_path / "kept" / "app" / IDENTITY_FILE).read_bytes()
        PRODUCTION_KDF.open(sealed, app.group(1))
        with pytest.raises(EnvelopeError):
            PRODUCTION_KDF.open(sealed, secret.group(1))
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(30):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
