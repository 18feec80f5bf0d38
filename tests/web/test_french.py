"""Every page of the desk, the kiosk and the app in French, with no English sentence left."""

from __future__ import annotations

import io
import re
from pathlib import Path

from babel.messages.pofile import read_po
from playwright.async_api import Page

from relay.client.scenario import World
from relay.i18n.catalogs import catalog_path
from tests.media_fixtures import Clips
from tests.web.support import PASSPHRASE, chromium, interface, profile_for, shot, wait_job


def _english_sentences() -> list[str]:
    """Every English message whose French differs, as the fixed text between its placeholders."""
    with open(catalog_path("fr"), "rb") as po:
        catalog = read_po(po, locale="fr")
    found = []
    for message in catalog:
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for english in ids:
            if not english or english in strings:
                continue
            for piece in re.split(r"%\(\w+\)[sd]|\{\w+\}", english):
                piece = piece.strip(" .,:;?!…")
                if len(piece.split()) >= 2:  # single words (e.g. "Message", "Dossier") can be shared
                    found.append(piece)
    return found


ENGLISH = _english_sentences()


UNLABELLED = """() => Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea, button"))
  .filter(c => !((c.labels && c.labels.length) || c.getAttribute("aria-label") || (c.tagName === "BUTTON"
    && c.textContent.trim())))
  .map(c => c.outerHTML.slice(0, 80))"""


async def french_only(page: Page, name: str) -> None:
    assert await page.get_attribute("html", "lang") == "fr", name
    assert await page.evaluate(UNLABELLED) == [], f"{name}: a control without a label"
    text = await page.inner_text("body")
    left = [sentence for sentence in ENGLISH if sentence in text]
    assert not left, f"{name}: English left: {left[:5]}"
    await shot(page, f"fr-{name}")


async def test_every_page_is_in_french(world: World, tmp_path: Path) -> None:
    victim = await world.session(world.victim)
    offender = await world.session(world.offender, on_terminal=True)
    try:
        letter = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                   src=io.BytesIO("Bonjour.\u200b Une lettre.\n".encode()))
        with open(Clips(tmp_path).plain, "rb") as src:
            video = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=src,
                                      kind="video", content_type="video/mp4")
        to_mediator = await offender.send(case_id=world.case_id, recipient="mediators",
                                          src=io.BytesIO("Pour le médiateur.\n".encode()))
    finally:
        await victim.close()
        await offender.close()

    desk_profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(desk_profile, "desk", lang="fr") as desk, chromium(tmp_path / "b1") as browser:
        page = await browser.new_page()
        await page.goto(desk.link)
        await french_only(page, "desk-unlock")
        await page.fill("#passphrase", PASSPHRASE)
        await page.click("#unlock")
        await french_only(page, "desk-queue")
        for path, name in ((f"/items/{letter['id']}", "desk-letter"), (f"/items/{letter['id']}/edit", "desk-edit"),
                           (f"/items/{letter['id']}/release", "desk-release"),
                           (f"/items/{letter['id']}/return", "desk-return"),
                           (f"/items/{letter['id']}/withhold", "desk-withhold"),
                           (f"/cases/{world.case_id}", "desk-case"), ("/inbox", "desk-inbox"),
                           (f"/inbox/{to_mediator['id']}", "desk-inbox-letter"),
                           (f"/write?case={world.case_id}", "desk-write"), (f"/items/{video['id']}", "desk-video")):
            await page.goto(desk.url + path)
            await french_only(page, name)
        await page.click("#open-video")
        await wait_job(page)
        await page.click("#sanitize")
        await wait_job(page)
        await french_only(page, "desk-video-open")
        await page.goto(f"{desk.url}/items/{letter['id']}/edit")
        await page.fill("#text", "Bonjour.\n")
        await page.click("#preview")
        await french_only(page, "desk-preview")
        await page.click("#confirm-draft")
        await page.click("#confirm-release")
        await french_only(page, "desk-done")
        await page.goto(f"{desk.url}/items/{video['id']}/withhold")
        await page.check("#reason-not-ready")
        await page.click("#confirm-withhold")
        await french_only(page, "desk-withheld")
        await page.goto(f"{desk.url}/items/itm_0000000000000000")
        await french_only(page, "desk-not-found")
        await page.click("#sign-out")
        await french_only(page, "desk-signed-out")

    kiosk_profile = profile_for(tmp_path / "kiosk", world, None, "kiosk")
    async with interface(kiosk_profile, "kiosk", lang="fr") as kiosk, chromium(tmp_path / "b2") as browser:
        page = await browser.new_page()
        await page.goto(kiosk.link)
        await french_only(page, "kiosk-identify")
        await page.fill("#code", str(world.offender.kiosk_code))
        await page.fill("#passphrase", "not the passphrase")
        await page.click("#unlock")
        await french_only(page, "kiosk-wrong-passphrase")
        await page.fill("#code", str(world.offender.kiosk_code))
        await page.fill("#passphrase", str(world.offender.passphrase))
        await page.click("#unlock")
        await french_only(page, "kiosk-home")
        await page.click("a.open-item")
        await french_only(page, "kiosk-letter")
        await page.goto(kiosk.url + "/write")
        await french_only(page, "kiosk-write")
        await page.select_option("#to", f"{world.case_id}|{world.victim.person_id}")
        await page.fill("#text", "Merci.\n")
        await page.click("#send")
        await french_only(page, "kiosk-sent")

    app_profile = profile_for(tmp_path / "app", world, world.victim, "app")
    async with interface(app_profile, "app", lang="fr") as app, chromium(tmp_path / "b3") as browser:
        page = await browser.new_page()
        await page.goto(app.link)
        await french_only(page, "app-unlock")
        await page.fill("#passphrase", PASSPHRASE)
        await page.click("#unlock")
        await french_only(page, "app-home")
        await page.goto(app.url + "/video")
        await french_only(page, "app-video")
