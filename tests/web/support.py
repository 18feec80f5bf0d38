"""Shared by the browser tests: profiles for the desk, kiosk and app, a running interface, and
Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.abc
from playwright.async_api import BrowserContext, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

from relay.client.kdf import TEST_KDF
from relay.client.profile import IDENTITY_FILE, Profile, write_private
from relay.client.scenario import Someone, World
from relay.client.web import app as web_app
from relay.client.web.config import Kind, WebConfig

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("RELAY_SCREENSHOTS", Path(__file__).resolve().parents[2] / "build" / "screenshots"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--password-store=basic",
                 "--autoplay-policy=no-user-gesture-required"]
PASSPHRASE = "correct horse battery staple desk"


def profile_for(directory: Path, world: World, who: Someone | None, kind: Kind) -> Path:
    """A provisioned profile: the desk's and the app's hold the person's sealed key; a kiosk's none."""
    device_kind = {"desk": "mediator_desk", "app": "participant_device", "kiosk": "terminal"}[kind]
    token = world.terminal_token if kind == "kiosk" else str(who.device_token if who else "")
    Profile(url=world.url, device_id=token.split(".", 1)[0], device_token=token, device_kind=device_kind,
            trust_root=world.trust_root, person_id=None if kind == "kiosk" or who is None else who.person_id
            ).save(directory)
    if who is not None and kind != "kiosk":
        write_private(directory / IDENTITY_FILE, TEST_KDF.seal(who.identity, PASSPHRASE))
    return directory


@asynccontextmanager
async def interface(profile: Path, kind: Kind, **options: object) -> AsyncIterator[web_app.Running]:
    running = await web_app.start(WebConfig(kind=kind, profile_dir=profile, kdf=TEST_KDF, **options))  # type: ignore[arg-type]
    try:
        yield running
    finally:
        await running.stop()


@asynccontextmanager
async def chromium(user_data: Path) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as p:
        context = await p.chromium.launch_persistent_context(
            str(user_data), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, locale="en-CA")
        try:
            yield context
        finally:
            await context.close()


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


PLAYS = """v => new Promise((resolve, reject) => {
  const go = () => { v.muted = true; v.play().then(() => setTimeout(() => resolve([v.duration, v.currentTime]), 800),
                                                  reject); };
  if (v.readyState >= 1) { go(); } else { v.addEventListener("loadedmetadata", go); v.addEventListener("error",
    () => reject(new Error("the video element could not load its source"))); v.load(); }
})"""


async def plays(page: Page, selector: str) -> tuple[float, float]:
    """The video element's duration, and its position after playing a moment (both > 0 if it plays)."""
    duration, position = await page.eval_on_selector(selector, PLAYS)
    return float(duration), float(position)


async def wait_job(page: Page, selector: str = ".job[data-job]", timeout_s: float = 120) -> None:
    """Wait for the page's background work to end (the page reloads, or shows its result).

    Polled from here: the pages' Content-Security-Policy forbids the eval that Playwright's own
    wait_for_function needs, which is as it should be."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        try:
            box = page.locator(selector)
            if await box.count() == 0 or await box.first.get_attribute("data-state") in ("finished", "failed"):
                await page.wait_for_load_state()
                return
        except PlaywrightError:  # the page navigated while we looked
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{selector} did not finish in {timeout_s} s")


async def wait_text(page: Page, selector: str, text: str, timeout_s: float = 60) -> str:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(PlaywrightError):
            found = await page.inner_text(selector, timeout=1000)
            if text in found:
                return found
        await asyncio.sleep(0.2)
    shown = await page.inner_text("body")
    raise TimeoutError(f"{selector} never showed {text!r}; the page shows: {shown[:600]!r}")


async def victim_writes(world: World, content: bytes) -> dict[str, Any]:
    """The victim sends a letter to the offender from their own device (through the SDK): the item."""
    victim = await world.session(world.victim)
    try:
        sent: dict[str, Any] = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                                 src=io.BytesIO(content))
        return sent
    finally:
        await victim.close()


async def signed_in(browser: BrowserContext, running: web_app.Running) -> Page:
    """A page of ``browser`` bound to a desk or an app (its one-time link), unlocked with the
    passphrase."""
    page = await browser.new_page()
    await page.goto(running.link)
    await page.fill("#passphrase", PASSPHRASE)
    await page.click("#unlock")
    return page


desk_signed_in = signed_in


async def kiosk_signed_in(browser: BrowserContext, kiosk: web_app.Running, world: World) -> Page:
    """A page bound to ``kiosk`` where the offender identified with their code and passphrase."""
    page = await browser.new_page()
    await page.goto(kiosk.link)
    await page.fill("#code", str(world.offender.kiosk_code))
    await page.fill("#passphrase", str(world.offender.passphrase))
    await page.click("#unlock")
    return page


class _Loopback(aiohttp.abc.AbstractResolver):
    """What browsers do for every ``*.localhost`` name, for aiohttp in the tests (the system's
    resolver here does not know them)."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, Any]]:
        if host != "localhost" and not host.endswith(".localhost"):
            raise OSError(f"tests only reach loopback, not {host}")
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": socket.AF_INET, "proto": 0,
                 "flags": socket.AI_NUMERICHOST}]

    async def close(self) -> None:
        return None


def http_client() -> aiohttp.ClientSession:
    """An HTTP client that reaches the interfaces' ``*.localhost`` names and keeps their cookie."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=_Loopback()),
                                 cookie_jar=aiohttp.CookieJar(unsafe=True))


SEEKS = """v => new Promise((resolve, reject) => {
  v.addEventListener("seeked", () => resolve(v.currentTime), { once: true });
  v.addEventListener("error", () => reject(new Error("the video element failed while seeking")), { once: true });
  v.currentTime = v.duration / 2;
})"""


async def seeks(page: Page, selector: str) -> float:
    """Where the video element is after a seek to its middle (served from memory with Range)."""
    return float(await page.eval_on_selector(selector, SEEKS))
