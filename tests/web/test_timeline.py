"""The case's timeline says which item each line is about ("letter 2", in the reader's language),
not "it" on every line, and names the mediators in the reader's words."""

from __future__ import annotations

import io
from pathlib import Path

from relay.client.scenario import World
from tests.media_fixtures import Clips
from tests.web.support import chromium, desk_signed_in, interface, profile_for, shot


async def test_every_line_of_the_timeline_names_its_item(world: World, tmp_path: Path) -> None:
    victim = await world.session(world.victim)
    offender = await world.session(world.offender, on_terminal=True)
    mediator = await world.session(world.mediator)
    try:
        first = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                  src=io.BytesIO(b"One.\n"))
        second = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                   src=io.BytesIO(b"Two.\n"))
        with open(Clips(tmp_path).plain, "rb") as src:
            await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=src,
                              kind="video", content_type="video/mp4")
        third = await offender.send(case_id=world.case_id, recipient="mediators", src=io.BytesIO(b"Three.\n"))
        await mediator.call("POST", f"/v1/items/{third['id']}/read")
        await mediator.release(second["id"])
        await mediator.withhold(first["id"], "not-ready")
    finally:
        await victim.close()
        await offender.close()
        await mediator.close()
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk") as desk, chromium(tmp_path / "browser") as browser:
        page = await desk_signed_in(browser, desk)
        await page.goto(f"{desk.url}/cases/{world.case_id}")
        lines = await page.locator("#timeline li").all_inner_texts()
        text = "\n".join(lines)
        assert "Victim sent letter 1 to Offender" in text and "Victim sent letter 2 to Offender" in text
        assert "Victim sent video message 1 to Offender" in text
        assert "Offender sent letter 3 to the mediators" in text
        assert "Mediator released letter 2 to Offender" in text
        assert "Mediator withheld letter 1" in text
        assert "Mediator opened letter 3" in text, text  # who opened it, not "the mediators"
        assert "released it" not in text and "withheld it " not in text and "see it" not in text, text
        await page.click("text=see letter 2 >> nth=0")
        assert page.url.endswith(f"/items/{second['id']}")

        await page.goto(f"{desk.url}/cases/{world.case_id}")
        await page.click("text=Français")
        text = "\n".join(await page.locator("#timeline li").all_inner_texts())
        assert "Mediator a transmis la lettre 2 à Offender" in text
        assert "Offender a envoyé la lettre 3 aux médiateurs" in text
        assert "mediators" not in text, text
        await shot(page, "fr-desk-timeline")
