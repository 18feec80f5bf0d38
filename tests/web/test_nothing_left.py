"""After sign-out, and after the idle timeout, the back button shows nothing, and nothing of
the letter or the video is left on the kiosk: not in its profile, not in temp directories, not
in the browser's profile or cache."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from playwright.async_api import Page

from relay.client.scenario import World
from relay.client.web.state import STATE
from tests.media_fixtures import Clips
from tests.web.support import chromium, desk_signed_in, interface, plays, profile_for, shot, victim_writes

MARKER = "MARKER-SCAN-LETTER-9Z"


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()] if root.exists() else []


def _found(roots: list[Path], needles: list[bytes]) -> list[str]:
    hits = []
    for root in roots:
        for path in _files(root):
            try:
                data = path.read_bytes()
            except OSError:
                continue
            for needle in needles:
                if needle in data:
                    hits.append(f"{path}: {needle[:20]!r}")
    return hits


async def _sign_in(page: Page, link: str, world: World) -> None:
    await page.goto(link)
    await page.fill("#code", str(world.offender.kiosk_code))
    await page.fill("#passphrase", str(world.offender.passphrase))
    await page.click("#unlock")
    await page.wait_for_selector("a.open-item")


async def test_sign_out_and_idle_leave_nothing_behind(world: World, tmp_path: Path) -> None:
    victim = await world.session(world.victim)
    mediator = await world.session(world.mediator)
    try:
        letter = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                   src=io.BytesIO(f"A letter. {MARKER}\n".encode()))
        with open(Clips(tmp_path).plain, "rb") as src:
            video = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=src,
                                      kind="video", content_type="video/mp4")
        await mediator.release(letter["id"])
        await mediator.release(video["id"])
    finally:
        await victim.close()
        await mediator.close()
    peek = await world.session(world.offender, on_terminal=True)
    try:
        delivered = io.BytesIO()
        await peek.fetch(video["id"], delivered, acknowledge=False)
    finally:
        await peek.close()
    plain = delivered.getvalue()
    samples = [plain[i:i + 48] for i in (len(plain) // 4, len(plain) // 2, 3 * len(plain) // 4)]
    needles = [MARKER.encode(), MARKER.encode("utf-16-le"), *samples]

    temp_root = Path(tempfile.gettempdir())
    before = set(os.listdir(temp_root))
    shm_before = set(os.listdir("/dev/shm")) if Path("/dev/shm").is_dir() else set()
    kiosk_profile = profile_for(tmp_path / "kiosk", world, None, "kiosk")
    browser_dir = tmp_path / "browser"
    async with interface(kiosk_profile, "kiosk", idle_seconds=4) as kiosk:
        scratch = kiosk.app[STATE].scratch
        async with chromium(browser_dir) as browser:
            page = await browser.new_page()
            await _sign_in(page, kiosk.link, world)
            await page.click(f"a[href='/items/{letter['id']}']")
            assert MARKER in await page.inner_text(".letter")
            await page.goto(f"{kiosk.url}/items/{video['id']}")
            duration, position = await plays(page, "#video")
            assert duration > 0 and position > 0
            await page.goto(f"{kiosk.url}/items/{letter['id']}")
            await page.click("#sign-out")
            assert "signed out" in await page.inner_text("main")
            await page.go_back()
            await page.wait_for_load_state()
            assert MARKER not in await page.content()
            await shot(page, "kiosk-back-after-sign-out")

            await _sign_in(page, kiosk.url + "/", world)  # the browser is still bound
            await page.goto(f"{kiosk.url}/items/{letter['id']}")
            assert MARKER in await page.inner_text(".letter")
            # No touch, no key: after the idle time the screen leaves the letter by itself.
            await page.wait_for_url(f"{kiosk.url}/", timeout=15_000)
            assert "without activity" in await page.inner_text("main")
            assert kiosk.app[STATE].person is None
            await page.go_back()
            await page.wait_for_load_state()
            assert MARKER not in await page.content()
            await shot(page, "kiosk-back-after-idle")
        assert scratch is not None and scratch.exists()
    assert not scratch.exists()  # the interface's scratch (in memory) is gone with it

    new_temp = [temp_root / name for name in set(os.listdir(temp_root)) - before]
    new_shm = [Path("/dev/shm") / name for name in (set(os.listdir("/dev/shm")) - shm_before)] if shm_before else []
    hits = _found([browser_dir, kiosk_profile, *new_temp, *new_shm], needles)
    assert not hits, hits
    assert _files(browser_dir), "the browser kept a profile to scan"


WRITTEN = "MARKER-WRITTEN-AT-THE-KIOSK-4T"
UNSENT = "MARKER-TYPED-NOT-SENT-8W"
EDITED = "MARKER-EDITED-AT-THE-DESK-2P"


async def test_what_people_write_is_not_kept_in_the_browser(world: World, tmp_path: Path) -> None:
    """Browsers keep form fields and the bodies of POSTs that answered with a page in their session
    files; forms here keep no state and every POST answers with a redirect."""
    letter = await victim_writes(world, f"A letter to redact. {EDITED}\n".encode())
    kiosk_browser, desk_browser = tmp_path / "kiosk-browser", tmp_path / "desk-browser"
    kiosk_profile = profile_for(tmp_path / "kiosk", world, None, "kiosk")
    async with interface(kiosk_profile, "kiosk") as kiosk:
        async with chromium(kiosk_browser) as browser:
            page = await browser.new_page()
            await page.goto(kiosk.link)
            await page.fill("#code", str(world.offender.kiosk_code))
            await page.fill("#passphrase", str(world.offender.passphrase))
            await page.click("#unlock")
            await page.goto(kiosk.url + "/write")
            await page.select_option("#to", f"{world.case_id}|{world.victim.person_id}")
            await page.fill("#text", f"My answer. {WRITTEN}\n")
            await page.click("#send")
            assert "with your mediator" in await page.inner_text("#result")
            await page.goto(kiosk.url + "/write")
            await page.fill("#text", f"Half a thought. {UNSENT}\n")
            await page.goto(kiosk.url + "/")
            await page.click("#sign-out")
    desk_profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(desk_profile, "desk") as desk:
        async with chromium(desk_browser) as browser:
            page = await desk_signed_in(browser, desk)
            await page.goto(f"{desk.url}/items/{letter['id']}/edit")
            await page.fill("#text", f"A letter to redact, redacted. {EDITED}\n")
            await page.click("#preview")
            assert EDITED in await page.inner_text(".side-by-side")
            await page.goto(desk.url + "/")
            await page.click("#sign-out")
    needles = [m.encode(enc) for m in (WRITTEN, UNSENT, EDITED) for enc in ("utf-8", "utf-16-le")]
    hits = _found([kiosk_browser, desk_browser, kiosk_profile, desk_profile], needles)
    assert not hits, hits
