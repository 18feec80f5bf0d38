"""The participant replies from the kiosk and the reply waits in the desk's queue; under a
court order, the desk names the condition, offers no release, and a forced release is refused."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path

from relay.client.scenario import World
from tests.conftest import Relay
from tests.test_conditions import order
from tests.web.support import chromium, desk_signed_in, interface, kiosk_signed_in, profile_for, shot

REPLY = "I read your letter. MARKER-REPLY-3K\n"
# The release form posted by hand, as a page left open or a crafted request would.
FORCED_RELEASE = """([url, digest]) => fetch(url, {method: "POST", credentials: "same-origin",
  headers: {"X-CSRF-Token": document.body.dataset.csrf}, body: new URLSearchParams({digest: digest, draft_id: ""})})
  .then(r => r.text())"""


async def test_a_reply_from_the_kiosk_waits_for_review_and_its_condition_is_named_at_the_desk(
        relay: Relay, world: World, tmp_path: Path) -> None:
    console = await world.session(world.coordinator)
    try:
        condition = await console.call("POST", "/v1/conditions", json_body=order(world, relay))
    finally:
        await console.close()

    kiosk_profile = profile_for(tmp_path / "kiosk", world, None, "kiosk")
    async with interface(kiosk_profile, "kiosk") as kiosk, chromium(tmp_path / "browser-kiosk") as browser:
        page = await kiosk_signed_in(browser, kiosk, world)
        await page.click("text=Write a letter >> nth=0")
        await page.select_option("#to", f"{world.case_id}|{world.victim.person_id}")
        await page.fill("#text", REPLY)
        await shot(page, "kiosk-write")
        await page.click("#send")
        assert "with your mediator" in await page.inner_text("#result")
        await page.click("text=Back")
        sent_list = await page.inner_text("main")
        assert "Waiting for your mediator's review" in sent_list  # neutral words; no condition named
        assert "ONCJ" not in sent_list and "condition" not in sent_list.lower()
        await shot(page, "kiosk-sent")

    desk_profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(desk_profile, "desk", queue_poll_seconds=1) as desk, \
            chromium(tmp_path / "browser-desk") as browser:
        page = await desk_signed_in(browser, desk)
        rows = page.locator("table.queue tbody tr")
        assert await rows.count() == 1
        flags = await rows.first.locator(".flag.refer").inner_text()
        assert "Awaiting the national unit's approval" in flags and "ONCJ 2024-1187" in flags
        assert "court non-communication order" in flags
        await shot(page, "desk-awaiting-approval")
        # The queue keeps itself current: a new item shows in the title without a reload.
        victim = await world.session(world.victim)
        try:
            await victim.send(case_id=world.case_id, recipient="mediators", src=io.BytesIO(b"A note.\n"))
            await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                              src=io.BytesIO(b"Another letter.\n"))
        finally:
            await victim.close()
        for _ in range(50):
            if (await page.title()).startswith("(1) "):
                break
            await asyncio.sleep(0.2)
        assert (await page.title()).startswith("(1) Review queue"), await page.title()
        assert "New items arrived (1)" in await page.inner_text("#queue-news")
        await rows.first.locator("a.open-item").click()
        assert await page.locator("#release-as-written").count() == 0
        assert "not possible until the national unit records its approval" in await page.inner_text("main")
        item_id = page.url.rsplit("/", 1)[-1]
        # Forcing the release (the page offers none) is refused by the relay, and said in words.
        await page.goto(f"{desk.url}/items/{item_id}/release")
        assert await page.locator("#confirm-release").count() == 0  # the confirmation offers none either
        assert "not possible until" in await page.inner_text("#approval-no-release")
        refusal = await page.evaluate(FORCED_RELEASE, [f"/items/{item_id}/release",
                                                       hashlib.sha256(REPLY.encode()).hexdigest()])
        assert "That did not work" in refusal
        assert condition["id"] not in refusal
        queue = await page.goto(f"{desk.url}/")
        assert queue is not None and await page.locator("table.queue tbody tr").count() == 2
