"""A redacted draft belongs to the letter it was made from: it can never be released as another
item, and a release carries only the text whose digest the confirmation page showed."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

from relay.client.scenario import World
from tests.web.support import PASSPHRASE, http_client, interface, profile_for


async def test_a_draft_is_released_only_as_its_own_item(world: World, tmp_path: Path) -> None:
    victim = await world.session(world.victim)
    try:
        x = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"X.\n"))
        y = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"Y.\n"))
    finally:
        await victim.close()
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk") as desk, http_client() as http:
        await (await http.get(desk.link)).release()
        page = await (await http.get(desk.url + "/")).text()
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        await (await http.post(desk.url + "/unlock", data={"passphrase": PASSPHRASE, "csrf": csrf})).release()
        made = await http.post(f"{desk.url}/items/{y['id']}/preview", data={"text": "TEXT MADE FOR Y\n", "csrf": csrf},
                               allow_redirects=False)
        assert made.status == 303  # the comparison is shown at its own address, not as the POST's answer
        draft = made.headers["Location"].split("draft=", 1)[1]
        digest = hashlib.sha256(b"TEXT MADE FOR Y\n").hexdigest()
        confirm = await http.get(f"{desk.url}/items/{x['id']}/release?draft={draft}", allow_redirects=False)
        assert confirm.status == 303 and confirm.headers["Location"] == f"/items/{x['id']}/edit"
        forced = await http.post(f"{desk.url}/items/{x['id']}/release", allow_redirects=False,
                                 data={"draft_id": draft, "digest": digest, "csrf": csrf})
        assert forced.status == 303 and forced.headers["Location"] == f"/items/{x['id']}/edit"
        wrong_digest = await http.post(f"{desk.url}/items/{y['id']}/release", allow_redirects=False,
                                       data={"draft_id": draft, "digest": "0" * 64, "csrf": csrf})
        assert wrong_digest.headers["Location"] == f"/items/{y['id']}/edit"
    mediator = await world.session(world.mediator)
    try:
        waiting = {q["id"] for q in await mediator.call("GET", "/v1/review/queue")}
    finally:
        await mediator.close()
    assert waiting == {x["id"], y["id"]}  # nothing was released
