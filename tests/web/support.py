"""Shared by the browser tests: profiles for the desk, kiosk and app, a running interface, and
Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import BrowserContext, Page, async_playwright

from relay.client.kdf import TEST_KDF
from relay.client.profile import IDENTITY_FILE, Profile, write_private
from relay.client.scenario import Someone, World
from relay.client.web import app as web_app
from relay.client.web.config import Kind, WebConfig

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("RELAY_SCREENSHOTS", Path(__file__).resolve().parents[2] / "build" / "screenshots"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--password-store=basic"]
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
