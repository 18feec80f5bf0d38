"""The kiosk (an institution's terminal, for whichever participant walks up) and the app (a
participant's own device): what was released to them, the state of what they sent, reading,
watching, writing; and on the app, sending a video with progress, pause and resume.

Wording is neutral: the pages describe what happened and what the person can do, and never
suggest forgiveness, an apology or a meeting (the program's rule: forgiveness is not a goal).
"""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from relay import ids
from relay.client import visible
from relay.client.sdk import ProblemError
from relay.client.web import jobs, render
from relay.client.web.common import KEPT_FAILURES, context, describe, form_of, person_required, state_of, unlock_page
from relay.client.web.person import Job, Plain, Unlocked
from relay.client.web.render import _, page
from relay.client.web.state import State, WrongPassphrase

OUTBOX = "outbox"


class Paused(Exception):
    """The person paused an upload: it stops after the chunk in flight and resumes from there."""


async def person_for_code(state: State, code: str) -> str:
    """The person a kiosk code names, if they have a case at this terminal's institution."""
    code = code.strip()
    if not code:
        raise WrongPassphrase()
    async with state.client() as client:
        try:
            found = await client.call("POST", "/v1/kiosk/identify", json_body={"code": code})
        except ProblemError as refused:
            if refused.status == 429:
                raise  # too many wrong codes at this terminal: the page says so and what to do
            raise WrongPassphrase() from None
    return str(found["person_id"])


async def _labels(person: Unlocked) -> tuple[dict[str, str], list[dict[str, Any]]]:
    labels: dict[str, str] = {}
    cases = []
    for case in person.cases:
        view = await person.client.call("GET", f"/v1/cases/{case['id']}")
        cases.append(view)
        labels |= {p["id"]: p["label"] for p in view.get("participants", []) + view.get("mediators", [])}
    return labels, cases


def _recipients(person: Unlocked, cases: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Who this person may write to: the other side of each case, and its mediators."""
    out = []
    for case in cases:
        for p in case.get("participants", []):
            if p["id"] != person.person_id:
                out.append({"value": f"{case['id']}|{p['id']}", "label": p["label"]})
        if case.get("mediators"):
            out.append({"value": f"{case['id']}|mediators", "label": _("My mediator")})
    return out


def _in_words(words: dict[str, str]) -> str:
    """The relay's words for a state (``{"en": ..., "fr": ...}``) in the page's language."""
    return words.get(render.lang()) or words["en"]


async def home(request: web.Request) -> web.StreamResponse:
    person = state_of(request).person
    if person is None:
        return unlock_page(request)
    labels, cases = await _labels(person)
    received = await person.client.call("GET", "/v1/inbox")
    sent = await person.client.call("GET", "/v1/items/sent")
    for row in received:
        row["from_label"] = labels.get(row["sender_id"], _("your mediator"))
    for row in sent:
        row["to_label"] = _("your mediator") if row["to_mediators"] else labels.get(row.get("recipient_id") or "", "?")
        row["status_text"] = _in_words(row["status"])
    return page(request, "person_home.html", context(
        request, received=received, sent=sent, can_write=bool(_recipients(person, cases)),
        unfinished=unfinished_sends(state_of(request)) if state_of(request).config.kind == "app" else 0))


@person_required
async def open_item(request: web.Request, person: Unlocked) -> web.StreamResponse:
    """A released letter or video: the mediator's signed release verified, decrypted in memory."""
    item_id = request.match_info["item"]
    if not ids.valid("item", item_id):
        raise web.HTTPNotFound()
    buffer = io.BytesIO()
    view = await person.client.fetch(item_id, buffer)
    labels, _cases = await _labels(person)
    # Who wrote it, as the mediator's signed release names them (verified along the enrollment
    # chain by the SDK), not as the relay's listing says.
    signed = view.get("sender") or {}
    sender = labels.get(str(signed.get("id") or view.get("sender_id") or ""), _("your mediator"))
    if view["kind"] == "video":
        token = person.keep(Plain(buffer.getvalue(), view.get("content_type") or "video/mp4", item_id))
        return page(request, "person_video.html", context(request, item=view, token=token, sender=sender))
    text = buffer.getvalue().decode("utf-8", errors="replace")
    return page(request, "person_letter.html", context(request, item=view, text=text, sender=sender,
                                                       hidden=visible.hidden_count(text), note=False))


@person_required
async def read_note(request: web.Request, person: Unlocked) -> web.StreamResponse:
    """The mediator's note on a letter they returned to its sender."""
    item_id = request.match_info["item"]
    buffer = io.BytesIO()
    view = await person.client.read_note(item_id, buffer)
    text = buffer.getvalue().decode("utf-8", errors="replace")
    return page(request, "person_letter.html", context(request, item=view, text=text, sender=_("your mediator"),
                                                       hidden=visible.hidden_count(text), note=True))


@person_required
async def open_sent(request: web.Request, person: Unlocked) -> web.StreamResponse:
    """A letter this person sent, as they sent it (sealed to them too; their own signature checked),
    decrypted in memory, with where it stands. A video is not shown again here: it was sent from
    this device, where the person chose the file."""
    item_id = request.match_info["item"]
    if not ids.valid("item", item_id):
        raise web.HTTPNotFound()
    buffer = io.BytesIO()
    item = await person.client.open_item(item_id, buffer)
    if item["kind"] != "letter" or item.get("sender_id") != person.person_id:
        raise web.HTTPNotFound()
    labels, _cases = await _labels(person)
    recipient = (_("your mediator") if item.get("to_mediators")
                 else labels.get(item.get("recipient_id") or "", "?"))
    text = buffer.getvalue().decode("utf-8", errors="replace")
    return page(request, "person_sent_letter.html", context(
        request, item=item, text=text, recipient=recipient, hidden=visible.hidden_count(text),
        status=_in_words(item["status"])))


@person_required
async def compose(request: web.Request, person: Unlocked) -> web.StreamResponse:
    _labels_, cases = await _labels(person)
    kept = person.unsent.get(request.query.get("unsent", ""))
    return page(request, "person_write.html", context(
        request, recipients=_recipients(person, cases), error=kept.error if kept else None,
        text=kept.text if kept else "", to=kept.to if kept else "", unsent=kept is not None))


def _keep_unsent(person: Unlocked, to: str, text: str, error: str) -> web.HTTPSeeOther:
    """Back to the form with the letter as written and why it was not sent: kept in memory and shown
    at its own address (a page answering the POST would keep the letter in the browser's files)."""
    return web.HTTPSeeOther(f"/write?unsent={person.keep_unsent(to, text, error)}")


def _target(value: str) -> tuple[str, str]:
    case_id, _sep, to = value.partition("|")
    return case_id, to


@person_required
async def send_letter(request: web.Request, person: Unlocked) -> web.StreamResponse:
    form = await form_of(request)
    _labels_, cases = await _labels(person)
    recipients = _recipients(person, cases)
    text = form.get("text", "").replace("\r\n", "\n")
    chosen = form.get("to", "")
    if chosen not in {r["value"] for r in recipients} or not text.strip():
        raise _keep_unsent(person, chosen, text, _("Choose who the letter is for and write it before sending."))
    case_id, to = _target(chosen)
    try:
        await person.client.send(case_id=case_id, recipient=to, src=io.BytesIO(text.encode("utf-8")))
    except KEPT_FAILURES as failure:
        raise _keep_unsent(person, chosen, text, describe(failure, state_of(request).config.kind)) from None
    raise web.HTTPSeeOther("/sent")  # a page answering the POST would keep the letter in the browser


@person_required
async def sent(request: web.Request, person: Unlocked) -> web.StreamResponse:
    return page(request, "person_sent.html", context(request, job=None))


# -- the app: a video, with progress, pause and resume ----------------------------------------------


@person_required
async def compose_video(request: web.Request, person: Unlocked) -> web.StreamResponse:
    _labels_, cases = await _labels(person)
    job = person.jobs.get(request.query.get("job", ""))
    return page(request, "person_video_send.html", context(request, recipients=_recipients(person, cases),
                                                           job=job.public() if job else None))


def _outbox(state: State) -> Path:
    outbox = state.config.profile_dir / OUTBOX
    outbox.mkdir(mode=0o700, exist_ok=True)
    return outbox


@person_required
async def send_video(request: web.Request, person: Unlocked) -> web.StreamResponse:
    """The browser streams the chosen file here (it is already on this device); it is sealed into
    the profile's outbox (ciphertext only) and sent resumably. The plaintext copy is removed as
    soon as the sealed one exists."""
    state = state_of(request)
    _labels_, cases = await _labels(person)
    target = request.headers.get("X-Relay-To", "")
    if target not in {r["value"] for r in _recipients(person, cases)}:
        raise web.HTTPUnprocessableEntity(text=_("Choose who the video is for."))
    case_id, to = _target(target)
    content_type = request.headers.get("Content-Type", "video/mp4")
    fd, name = tempfile.mkstemp(prefix="video-", dir=state.scratch)
    plain = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.content.iter_chunked(1024 * 1024):
                out.write(chunk)
    except BaseException:
        plain.unlink(missing_ok=True)
        raise
    outbox = _outbox(state)

    async def work(job: Job) -> dict[str, Any]:
        def progress(done: float, total: float) -> None:
            job.progress(done, total)
            if job.pause_requested:
                raise Paused()

        try:
            with open(plain, "rb") as src:
                return await person.client.send(case_id=case_id, recipient=to, src=src, kind="video",
                                                 content_type=content_type, outbox=outbox, progress=progress)
        except Paused:
            job.state = "paused"
            return {}
        finally:
            plain.unlink(missing_ok=True)

    job = jobs.start(person, "send-video", "", work)
    return web.json_response(job.public())


def _job(request: web.Request, person: Unlocked) -> Job:
    job = person.jobs.get(request.match_info["job"])
    if job is None:
        raise web.HTTPNotFound()
    return job


@person_required
async def pause_job(request: web.Request, person: Unlocked) -> web.StreamResponse:
    job = _job(request, person)
    job.pause_requested = True
    return web.json_response(job.public())


async def _carry_on(person: Unlocked, outbox: Path, job: Job) -> None:
    """Finish every send left in the outbox, from the relay's acknowledged offset."""
    results = await person.client.resume_outbox(outbox, progress=job.progress)
    if any(r.get("error") for r in results):
        job.state = "failed"
        job.error = _("The relay did not accept the video. Try again later, or tell your mediator.")


@person_required
async def resume_job(request: web.Request, person: Unlocked) -> web.StreamResponse:
    """Carry on every paused or interrupted send from the relay's acknowledged offset."""
    job = _job(request, person)
    job.pause_requested = False
    job.state = "running"
    outbox = _outbox(state_of(request))

    async def carry_on() -> None:
        try:
            await _carry_on(person, outbox, job)
            if job.state == "running":
                job.state = "finished"
        except Exception as exc:
            job.state, job.error = "failed", describe(exc)

    job.task = asyncio.create_task(carry_on())
    return web.json_response(job.public())


def unfinished_sends(state: State) -> int:
    """Sends an earlier session left in the outbox (signed out, stopped, or the connection lost)."""
    outbox = state.config.profile_dir / OUTBOX
    return sum(1 for p in outbox.iterdir() if (p / "meta.json").is_file()) if outbox.is_dir() else 0


@person_required
async def carry_on_sending(request: web.Request, person: Unlocked) -> web.StreamResponse:
    """From the list: finish what an earlier session left unsent, with its progress on the video page."""
    outbox = _outbox(state_of(request))
    job = jobs.start(person, "send-video", "", lambda job: _carry_on(person, outbox, job))
    raise web.HTTPSeeOther(f"/video?job={job.id}")


def add_routes(app: web.Application, kind: str) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/items/{item}", open_item)
    app.router.add_get("/items/{item}/note", read_note)
    app.router.add_get("/write", compose)
    app.router.add_post("/write", send_letter)
    app.router.add_get("/sent", sent)
    app.router.add_get("/sent/{item}", open_sent)
    if kind == "app":
        app.router.add_get("/video", compose_video)
        app.router.add_post("/video", send_video)
        app.router.add_post("/jobs/{job}/pause", pause_job)
        app.router.add_post("/jobs/{job}/resume", resume_job)
        app.router.add_post("/outbox/resume", carry_on_sending)
