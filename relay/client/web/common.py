"""Routes every interface has: the one-time link, the language, unlocking and signing out,
decrypted media served from memory, the progress of long work, and the pages for failures."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

import aiohttp
from aiohttp import web

from media import MediaError
from relay import i18n, ids
from relay.client.sdk import InsecureTransport, OverLimit, ProblemError, VerificationError
from relay.client.web import render
from relay.client.web.guard import COOKIE, CSRF_FIELD, Refused
from relay.client.web.person import Unlocked
from relay.client.web.render import _, page
from relay.client.web.state import STATE, State, WrongPassphrase
from relay.i18n.catalogs import LANGUAGES, N_, translation

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
View = Callable[[web.Request, Unlocked], Awaitable[web.StreamResponse]]

REFUSALS = {
    "host": N_("This page can only be opened at the address this program printed."),
    "cross-site": N_("This request came from another page or site, so it was refused."),
    "unbound": N_("Open the link that was printed when this program started. If it was already used,"
                  " start the program again for a new one."),
    "csrf": N_("This form has expired. Go back, reload the page and try again."),
}


def state_of(request: web.Request) -> State:
    return request.app[STATE]


def context(request: web.Request, **values: Any) -> dict[str, Any]:
    """What every page needs: the interface's kind, the person, the CSRF token, the idle time."""
    state = state_of(request)
    return {"kind": state.config.kind, "person": state.person.person if state.person else None,
            "csrf": state.binding.csrf, "csrf_field": CSRF_FIELD, "idle_seconds": state.config.idle,
            "path": request.path_qs, "poll_seconds": state.config.queue_poll_seconds, **values}


def person_required(view: View) -> Handler:
    """The view runs for an unlocked person; otherwise the unlock page is shown."""

    @wraps(view)
    async def handler(request: web.Request) -> web.StreamResponse:
        person = state_of(request).person
        if person is None:
            raise web.HTTPSeeOther("/")
        return await view(request, person)

    return handler


def passive(handler: Handler) -> Handler:
    """A polling route: it does not keep an idle session alive."""
    handler.passive = True  # type: ignore[attr-defined]
    return handler


async def form_of(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


# -- the one-time link and the language --------------------------------------------------------


async def start(request: web.Request) -> web.StreamResponse:
    cookie = state_of(request).binding.exchange(request.match_info["token"])
    if cookie is None:
        raise Refused(403, "unbound")
    response = web.HTTPSeeOther("/")
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="Strict", path="/")
    raise response


_LOCAL_PATH = re.compile(r"/[A-Za-z0-9/_\-.?=&%]*")


async def choose_language(request: web.Request) -> web.StreamResponse:
    lang = request.match_info["lang"]
    back = request.query.get("next", "/")
    if not _LOCAL_PATH.fullmatch(back) or back.startswith("//"):
        back = "/"
    response = web.HTTPSeeOther(back)
    if lang in LANGUAGES:
        response.set_cookie(render.LANG_COOKIE, lang, httponly=True, samesite="Strict", path="/")
    raise response


# -- unlocking and signing out ----------------------------------------------------------------


async def unlock(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    form = await form_of(request)
    secret = form.get("passphrase", "")
    try:
        if state.config.kind == "kiosk":
            from relay.client.web.participant import person_for_code

            person_id = await person_for_code(state, form.get("code", ""))
            await state.unlock_at_kiosk(person_id, secret)
        else:
            await state.unlock_own(secret)
    except WrongPassphrase:
        message = {"kiosk": _("That code and passphrase do not open a key here. Check both and try again."),
                   "app": _("That is not the passphrase for this device. Check it and try again.")}.get(
            state.config.kind, _("That passphrase does not open your key. Check it and try again."))
        return page(request, "unlock.html", context(request, error=message, notice=None), status=401)
    except KEPT_FAILURES as failure:
        # Too many wrong codes at this terminal, or the relay out of reach: said on the sign-in page,
        # where the person tries again.
        status = failure.status if isinstance(failure, ProblemError) and 400 <= failure.status < 600 else 502
        return page(request, "unlock.html", context(request, error=describe(failure, state.config.kind),
                                                    notice=None), status=status)
    raise web.HTTPSeeOther("/")


def _work_under_way(state: State) -> bool:
    return state.person is not None and any(job.state == "running" for job in state.person.jobs.values())


async def sign_out(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    if _work_under_way(state) and not (await form_of(request)).get("anyway"):
        # Signing out stops a video being sent or released: ask first (at its own address).
        raise web.HTTPSeeOther("/sign-out")
    await state.lock()
    # Ask the browser to drop anything it kept of these pages too.
    done = web.HTTPSeeOther("/?signed_out=1", headers={"Clear-Site-Data": '"cache"'})
    if state.config.kind == "kiosk":
        # The next person at a shared terminal starts in the kiosk's own language, not in the one
        # the last person chose (the sign-out notice says it in both).
        done.del_cookie(render.LANG_COOKIE, path="/")
    raise done


async def confirm_sign_out(request: web.Request) -> web.StreamResponse:
    if not _work_under_way(state_of(request)):
        raise web.HTTPSeeOther("/")
    return page(request, "sign_out.html", context(request))


async def alive(request: web.Request) -> web.StreamResponse:
    """The page says the person is typing or pointing (which the interface does not otherwise see)."""
    return web.Response(status=204)


SIGNED_OUT = N_("You are signed out. Nothing of your session is left on this computer.")


def unlock_page(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    notice = None
    if state.locked_by_idle:
        notice = _("You were signed out after a period without activity.")
    elif request.query.get("signed_out"):
        notice = _(SIGNED_OUT)
        if state.config.kind == "kiosk":  # the kiosk has gone back to its own language: say it in both
            notice = " / ".join(dict.fromkeys(translation(code).gettext(SIGNED_OUT)
                                              for code in (render.lang(), *LANGUAGES)))
    return page(request, "unlock.html", context(request, notice=notice, error=None))


# -- decrypted media, from memory ---------------------------------------------------------------

_RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})")
SERVED_TYPES = frozenset({"video/mp4", "video/quicktime", "video/webm", "image/jpeg"})


@person_required
async def media(request: web.Request, person: Unlocked) -> web.StreamResponse:
    """A decrypted video (or poster) from memory, with Range so the player can seek."""
    plain = person.plain.get(request.match_info["token"])
    if plain is None:
        raise web.HTTPNotFound()
    data, total = plain.data, len(plain.data)
    # Only the types a page shows here, whatever a sender declared; and no page can run in it.
    kind = plain.content_type.split(";")[0].strip().lower()
    headers = {"Content-Type": kind if kind in SERVED_TYPES else "application/octet-stream",
               "Accept-Ranges": "bytes", "Content-Security-Policy": "sandbox; default-src 'none'"}
    match = _RANGE.fullmatch(request.headers.get("Range", ""))
    if match is None or not any(match.groups()):
        return web.Response(body=data, headers=headers)
    first, last = match.groups()
    if first:
        start, end = int(first), min(int(last) if last else total - 1, total - 1)
    else:
        start, end = max(0, total - int(last)), total - 1
    if start >= total or start > end:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{total}"})
    headers["Content-Range"] = f"bytes {start}-{end}/{total}"
    return web.Response(status=206, body=data[start:end + 1], headers=headers)


@passive
@person_required
async def job_status(request: web.Request, person: Unlocked) -> web.StreamResponse:
    job = person.jobs.get(request.match_info["job"])
    if job is None:
        raise web.HTTPNotFound()
    return web.json_response(job.public())


# -- failures ------------------------------------------------------------------------------------


def refusal(request: web.Request, refused: Refused) -> web.Response:
    return page(request, "message.html", {"kind": state_of(request).config.kind, "person": None, "csrf": "",
                                          "csrf_field": CSRF_FIELD, "idle_seconds": 0, "path": "/",
                                          "poll_seconds": 0, "title": _("Not allowed"),
                                          "message": _(REFUSALS[refused.message]), "back": None},
                status=refused.status)


SCREENING_AT_THE_DESK = N_("The relay's screening does not allow this now: the case may be paused, a participant"
                          " may have withdrawn, or a no-contact condition may apply. The item's flags and the"
                          " case's page say which.")


def not_found(request: web.Request) -> web.Response:
    """An address with nothing behind it (mistyped, or a video or draft of a session that ended)."""
    state = state_of(request)
    values = context(request) if state.binding.bound(request.cookies.get(COOKIE)) else {
        "kind": state.config.kind, "person": None, "csrf": "", "csrf_field": CSRF_FIELD, "idle_seconds": 0,
        "path": "/", "poll_seconds": 0}
    return page(request, "message.html", {**values, "title": _("Nothing here"), "back": None, "message": _(
        "There is nothing at this address. What was here may belong to a session that has ended.")}, status=404)


# Failures after which what a person wrote is kept and shown again (the relay refused it, or could
# not be reached), rather than lost behind a failure page.
KEPT_FAILURES = (ProblemError, OverLimit, aiohttp.ClientError, TimeoutError)


def describe(failure: Exception, kind: str | None = None) -> str:
    """One sentence a person can act on, in the page's language."""
    if isinstance(failure, ProblemError):
        slug = str(failure.problem.get("type") or "").rpartition(":")[2]
        if kind == "desk" and slug == "screening-refused":
            # The relay's title speaks to a participant ("your mediator can tell you more").
            return _(SCREENING_AT_THE_DESK)
        if slug == "already-decided" and isinstance(failure.problem.get("state"), str):
            # Another mediator (or another window) was first: say what the item is now, in words.
            decided = failure.problem.get("decided_at")
            return _("A decision was already recorded for this item (%(state)s, %(when)s). Nothing was changed.") % {
                "state": render.staff_state(failure.problem["state"]),
                "when": render.when(decided) if isinstance(decided, str) else ""}
        # The relay's own words for the problem, in the language of this page (the relay answered
        # in the language the interface started in).
        title = (i18n.text(slug, render.lang()) if slug in i18n.MESSAGES
                 else failure.problem.get("title") or _("The relay refused this."))
        detail = failure.problem.get("detail")
        return f"{title} {detail}" if isinstance(detail, str) and detail else str(title)
    if isinstance(failure, VerificationError):
        return _("What the relay sent did not verify, so nothing of it is shown. Tell your coordinator.")
    if isinstance(failure, OverLimit):
        return _("This is larger or longer than the relay accepts. Send a shorter or smaller one.")
    if isinstance(failure, InsecureTransport):
        return _("The relay's address is not secure (https). Ask your coordinator to check the profile.")
    if isinstance(failure, MediaError):
        return _(failure.message_en)
    if isinstance(failure, aiohttp.ClientError | TimeoutError):
        return _("The relay cannot be reached just now. Check the connection and try again in a moment.")
    return _("Something went wrong. Try again; if it happens again, tell your coordinator.")


def _back_to(request: web.Request) -> str | None:
    """The item a failed action was about: the way back to it (its id checked, a local path only)."""
    item = request.match_info.get("item", "")
    back = f"/items/{item}"
    return back if ids.valid("item", item) and request.path != back else None  # not back to what just failed


def failure_page(request: web.Request, failure: Exception) -> web.Response:
    status = failure.status if isinstance(failure, ProblemError) else 502
    return page(request, "message.html", context(request, title=_("That did not work"),
                                                 message=describe(failure, state_of(request).config.kind),
                                                 back=_back_to(request)),
                status=status if 400 <= status < 600 else 502)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/start/{token}", start)
    app.router.add_get("/lang/{lang}", choose_language)
    app.router.add_post("/unlock", unlock)
    app.router.add_post("/sign-out", sign_out)
    app.router.add_get("/sign-out", confirm_sign_out)
    app.router.add_post("/alive", alive)
    app.router.add_get("/media/{token}", media)
    app.router.add_get("/jobs/{job}", job_status)
