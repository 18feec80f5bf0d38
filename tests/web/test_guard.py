"""What keeps other programs and web pages out of a local interface: loopback only, the Host
header, the one-time link and its cookie, CSRF tokens, and headers that forbid caching,
framing and inline script. Each refusal changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

from relay.client.scenario import World
from relay.client.web.guard import COOKIE
from tests.web.support import PASSPHRASE, http_client, interface, profile_for


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def test_only_the_one_time_link_binds_a_browser_and_only_once(world: World, tmp_path: Path) -> None:
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk") as desk, http_client() as http:
        assert desk.runner.addresses[0][0] == "127.0.0.1"  # never another interface
        async with http.get(desk.url + "/", allow_redirects=False) as anonymous:
            assert anonymous.status == 403 and COOKIE not in anonymous.cookies
            assert "Open the link" in await anonymous.text()
        link = desk.link
        async with http.get(link, allow_redirects=False) as bound:
            assert bound.status == 303
            morsel = bound.cookies[COOKIE]
            assert morsel["httponly"] and morsel["samesite"] == "Strict"
        async with http_client() as stranger, stranger.get(link, allow_redirects=False) as again:
            assert again.status == 403  # the link works once
        async with http.get(desk.url + "/") as page:
            assert page.status == 200 and 'id="passphrase"' in await page.text()
            csp = page.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
            assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Frame-Options"] == "DENY"
            assert "Server" not in page.headers
            assert "<script>" not in await page.text()  # no inline script anywhere


async def test_a_foreign_host_header_is_refused_even_with_the_cookie(world: World, tmp_path: Path) -> None:
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk") as desk, http_client() as http:
        await (await http.get(desk.link)).release()
        name = desk.url.split("//", 1)[1].split(":", 1)[0]
        for host in (f"evil.example:{desk.port}", f"127.0.0.1:{desk.port}", f"localhost:{desk.port}",
                     f"{name}:1", name, f"other.localhost:{desk.port}"):
            async with http.get(desk.url + "/", headers={"Host": host}) as refused:
                assert refused.status == 400, host
                assert 'id="passphrase"' not in await refused.text()


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(world: World, tmp_path: Path) -> None:
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk") as desk, http_client() as http:
        await (await http.get(desk.link)).release()
        async with http.get(desk.url + "/") as page:
            token = _csrf(await page.text())
        async with http.post(desk.url + "/unlock", data={"passphrase": PASSPHRASE}) as forged:
            assert forged.status == 403 and "expired" in await forged.text()
        async with http.post(desk.url + "/unlock", data={"passphrase": PASSPHRASE, "csrf": "x" * 43}) as wrong:
            assert wrong.status == 403
        async with http.get(desk.url + "/") as still_locked:
            assert 'id="passphrase"' in await still_locked.text()
        async with http.post(desk.url + "/unlock", data={"passphrase": PASSPHRASE, "csrf": token}) as ok:
            assert ok.status == 200 and "Review queue" in await ok.text()
        async with http.post(desk.url + "/sign-out", data={}) as forged_sign_out:
            assert forged_sign_out.status == 403
        async with http.get(desk.url + "/") as still_in:
            assert "Review queue" in await still_in.text()


async def test_a_request_another_page_caused_is_refused_even_with_the_cookie(world: World, tmp_path: Path) -> None:
    """Browsers mark where a request came from: another site or another port of 127.0.0.1 (a
    same-site page) cannot make the bound browser read, keep alive or change anything."""
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk") as desk, http_client() as http:
        await (await http.get(desk.link)).release()
        for site in ("same-site", "cross-site"):
            async with http.get(desk.url + "/", headers={"Sec-Fetch-Site": site}) as refused:
                assert refused.status == 403 and 'id="passphrase"' not in await refused.text()
        async with http.get(desk.url + "/", headers={"Sec-Fetch-Site": "same-origin"}) as ours:
            assert ours.status == 200


async def test_the_cookie_belongs_to_a_random_name_no_other_listener_shares(world: World, tmp_path: Path) -> None:
    """Browsers send a host's cookies to every port of it: the interface's random ``.localhost``
    name (which only it serves) keeps the binding cookie from other local listeners."""
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk") as desk, interface(profile, "desk") as other:
        assert desk.link.startswith("http://relay-") and ".localhost:" in desk.link
        assert desk.url.split(":")[1] != other.url.split(":")[1]  # a new name at every start


async def test_requests_without_the_cookie_are_refused_on_every_route(world: World, tmp_path: Path) -> None:
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk") as desk, http_client() as http:
        routes = [r for r in desk.app.router.routes() if r.method in ("GET", "POST")]
        checked = 0
        for route in routes:
            path = route.resource.canonical if route.resource is not None else "/"
            if path.startswith(("/start/", "/static")):
                continue
            url = desk.url + re.sub(r"\{[^}]+\}", "itm_0000000000000000", path)
            async with http.request(route.method, url, allow_redirects=False) as refused:
                assert refused.status == 403, (route.method, path, refused.status)
                checked += 1
        assert checked >= 20
