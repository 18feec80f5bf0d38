"""Working through the review queue: after each decision the desk offers the next item waiting
(oldest first) and says when nothing else waits; each item's link in the queue names who wrote to
whom, for someone who hears the page rather than sees the table."""

from __future__ import annotations

import io
from pathlib import Path

from relay.client.scenario import World
from tests.web.support import chromium, desk_signed_in, interface, profile_for, shot


async def test_each_decision_leads_to_the_next_item_until_the_queue_is_empty(world: World, tmp_path: Path) -> None:
    victim = await world.session(world.victim)
    offender = await world.session(world.offender, on_terminal=True)
    try:
        first = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                  src=io.BytesIO(b"First.\n"))
        second = await offender.send(case_id=world.case_id, recipient=world.victim.person_id,
                                     src=io.BytesIO(b"Second.\n"))
    finally:
        await victim.close()
        await offender.close()
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk") as desk, chromium(tmp_path / "browser") as browser:
        page = await desk_signed_in(browser, desk)
        for names in ("from Offender to Victim, Case 1", "from Victim to Offender, Case 1"):
            link = page.get_by_role("link", name=names)
            assert await link.count() == 1 and (await link.inner_text()).startswith("Letter")

        await page.goto(f"{desk.url}/items/{first['id']}")
        await page.click("#release-as-written")
        await page.click("#confirm-release")
        assert "Released" in await page.inner_text("#result")
        assert "1 waiting" in await page.inner_text("#next-item")
        await shot(page, "desk-done-next")
        await page.click("#next-item")
        assert page.url.endswith(f"/items/{second['id']}")
        await page.click("#withhold")
        # The confirmation names the item it is about (two letters may wait from the same person).
        assert "Letter from Offender to Victim" in await page.inner_text("#item-meta")
        await page.check("input[name=reason] >> nth=0")
        await page.click("#confirm-withhold")
        assert await page.locator("#next-item").count() == 0
        assert "Nothing else is waiting" in await page.inner_text("#queue-done")
