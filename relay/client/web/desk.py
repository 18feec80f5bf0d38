"""The mediator's desk: the review queue, a letter exactly as it would be delivered (hidden
characters shown and counted), the redaction editor with its side-by-side check, videos played
from memory before and after sanitizing, the three decisions, the case timeline, the
mediator's own inbox and messages, and pausing a case."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

import media
from relay import ids
from relay.client import visible
from relay.client.web import jobs
from relay.client.web.common import (
    KEPT_FAILURES,
    context,
    describe,
    form_of,
    passive,
    person_required,
    state_of,
    unlock_page,
)
from relay.client.web.person import Job, Plain, Unlocked
from relay.client.web.render import _, page, reasons
from relay.i18n.catalogs import N_
from relay.wire import PAUSE_REASONS, RESUME_REASONS, WITHHOLD_REASONS

# -- what the relay says, joined with the labels of the case's people -------------------------


def _labels(case: dict[str, Any]) -> dict[str, str]:
    return {p["id"]: p["label"] for p in case.get("participants", []) + case.get("mediators", [])}


_DEFAULT_LABEL = re.compile(r"Case ([0-9]{1,9})")


def case_words(label: str) -> str:
    """A case's label as the reader reads it: the relay names a case the coordinator left unnamed
    "Case n" (stored in English), which a French page shows as « Dossier n »."""
    found = _DEFAULT_LABEL.fullmatch(label)
    return _("Case %(number)s") % {"number": found.group(1)} if found else label


def case_ref(case: dict[str, Any]) -> str:
    """The case's label (the coordinator's, or "Case n"): cases carry no name that identifies anyone."""
    return case_words(str(case.get("label") or case.get("case_label") or case["id"]))


def _flags(item: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    """What needs the mediator's attention, from the relay's flags where it gave them (the queue
    and the inbox), else from the case as the mediator sees it."""
    given = item.get("flags")
    approval = item.get("approval") or {}
    if isinstance(given, dict):
        return {"awaiting_approval": bool(item.get("awaiting_approval")), "condition": approval.get("condition"),
                "would_allow": approval.get("approval_would_allow"), "held": bool(given.get("held")),
                "hold_code": given.get("hold_code"), "withdrawn": [w["label"] for w in given.get("withdrawn", [])],
                "paused": bool(given.get("case_paused")), "damaged": bool(given.get("damaged"))}
    involved = {item.get("sender_id"), item.get("recipient_id")}
    return {"awaiting_approval": False, "condition": None, "would_allow": None, "held": item.get("state") == "held",
            "hold_code": item.get("hold_code"),
            "withdrawn": [p["label"] for p in case.get("participants", [])
                          if p.get("consent") == "withdrawn" and p["id"] in involved],
            "paused": case.get("status") == "paused", "damaged": bool(item.get("damaged_at"))}


def _row(item: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    labels = _labels(case)
    sender, recipient = item.get("sender") or {}, item.get("recipient") or {}
    return {**item, "case_ref": case_ref(case) if case else case_words(item.get("case_label") or item["case_id"]),
            "from_label": sender.get("label") or labels.get(item["sender_id"], "?"),
            "to_label": (_("the mediators") if item.get("to_mediators")
                         else recipient.get("label") or labels.get(item.get("recipient_id") or "", "?")),
            "flags": _flags(item, case)}


async def _queue(person: Unlocked) -> list[dict[str, Any]]:
    """The queue with the relay's labels and flags (one request, whatever the number of cases)."""
    return [_row(q, {}) for q in await person.client.call("GET", "/v1/review/queue")]


async def _item(person: Unlocked, item_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    item = await person.client.call("GET", f"/v1/items/{item_id}")
    case = await person.client.call("GET", f"/v1/cases/{item['case_id']}")
    queued = {q["id"]: q for q in await person.client.call("GET", "/v1/review/queue")}
    return _row({**item, **queued.get(item_id, {})}, case), case


# -- the queue ------------------------------------------------------------------------------------


async def home(request: web.Request) -> web.StreamResponse:
    person = state_of(request).person
    if person is None:
        return unlock_page(request)
    rows = await _queue(person)
    person.seen_queue = {r["id"] for r in rows}
    inbox = await person.client.call("GET", "/v1/review/inbox")
    unread = sum(1 for i in inbox if i.get("state") != "delivered")
    return page(request, "desk_queue.html", context(request, rows=rows, unread=unread))


@passive
@person_required
async def queue_state(request: web.Request, person: Unlocked) -> web.StreamResponse:
    """For the page's poll: how many items wait, and how many arrived since the page was drawn."""
    queue = await person.client.call("GET", "/v1/review/queue")
    ids = {q["id"] for q in queue}
    return web.json_response({"count": len(ids), "new": len(ids - person.seen_queue)})


@person_required
async def poster(request: web.Request, person: Unlocked) -> web.StreamResponse:
    buffer = io.BytesIO()
    if not await person.client.poster(_checked(request, "item"), buffer):
        raise web.HTTPNotFound()
    return web.Response(body=buffer.getvalue(), content_type="image/jpeg")


# -- one item -----------------------------------------------------------------------------------


async def _letter(person: Unlocked, item_id: str) -> tuple[dict[str, Any], str, bool]:
    """The original letter's text; False if it is not valid UTF-8 (shown with replacements)."""
    buffer = io.BytesIO()
    item = await person.client.open_item(item_id, buffer)
    try:
        return item, buffer.getvalue().decode("utf-8"), True
    except UnicodeDecodeError:
        return item, buffer.getvalue().decode("utf-8", errors="replace"), False


@person_required
async def item_view(request: web.Request, person: Unlocked) -> web.StreamResponse:
    item_id = _checked(request, "item")
    row, case = await _item(person, item_id)
    values: dict[str, Any] = {"item": row, "case": case}
    if row["kind"] == "letter":
        _, text, valid = await _letter(person, item_id)
        values |= {"text": text, "valid_text": valid, "hidden": visible.hidden_count(text),
                   "declared": row.get("manifest", {}).get("content_type", "")}
        template = "desk_letter.html"
    else:
        media_for = person.media_for.get(item_id, {})
        values |= {"original": media_for.get("original"), "sanitized": media_for.get("sanitized"),
                   "opening": jobs.latest(person, "open-video", item_id),
                   "sanitizing": jobs.latest(person, "sanitize", item_id),
                   "has_poster": bool(row.get("manifest", {}).get("poster"))}
        template = "desk_video.html"
    return page(request, template, context(request, **values))


# -- letters: the redaction editor ------------------------------------------------------------


@person_required
async def edit(request: web.Request, person: Unlocked) -> web.StreamResponse:
    item_id = _checked(request, "item")
    row, case = await _item(person, item_id)
    draft = person.drafts.get(request.query.get("draft", ""))
    _, text, _valid = await _letter(person, item_id)
    if draft is not None and draft[0] == item_id:
        text = draft[1]
    return page(request, "desk_edit.html", context(request, item=row, text=text))


def _normalized(text: str) -> str:
    # A textarea sends line breaks as CRLF; a letter's line breaks are LF.
    return text.replace("\r\n", "\n")


@person_required
async def keep_draft(request: web.Request, person: Unlocked) -> web.StreamResponse:
    """Keep the edited letter in memory, then show the comparison at its own address: a page
    answering a POST would leave the letter in the browser's session files."""
    item_id = _checked(request, "item")
    form = await form_of(request)
    text = _normalized(form.get("text", ""))
    if form.get("strip_hidden"):
        text = visible.strip_hidden(text)
    draft_id = secrets.token_urlsafe(12)
    person.drafts[draft_id] = (item_id, text)
    raise web.HTTPSeeOther(f"/items/{item_id}/preview?draft={draft_id}")


@person_required
async def preview(request: web.Request, person: Unlocked) -> web.StreamResponse:
    """The original beside exactly what the recipient would receive, removals marked."""
    item_id = _checked(request, "item")
    draft_id = request.query.get("draft", "")
    text = _draft(person, item_id, draft_id)
    row, case = await _item(person, item_id)
    _, original, _valid = await _letter(person, item_id)
    changes = await asyncio.to_thread(visible.changes, original, text)
    return page(request, "desk_preview.html", context(
        request, item=row, original=original, text=text, draft_id=draft_id, changes=changes,
        hidden=visible.hidden_count(text), digest=hashlib.sha256(text.encode()).hexdigest(),
        unchanged=text == original))


def _draft(person: Unlocked, item_id: str, draft_id: str) -> str:
    """A draft made for this item (a draft of another item is never released in its place)."""
    kept = person.drafts.get(draft_id)
    if kept is None or kept[0] != item_id:
        raise web.HTTPSeeOther(f"/items/{item_id}/edit")
    return kept[1]


def _checked(request: web.Request, name: str) -> str:
    """An id from the address, checked before it goes into a request to the relay."""
    value = request.match_info[name]
    if not ids.valid({"item": "item", "case": "case"}[name], value):
        raise web.HTTPNotFound()
    return value


# -- the decisions ----------------------------------------------------------------------------


@person_required
async def confirm_release(request: web.Request, person: Unlocked) -> web.StreamResponse:
    item_id = _checked(request, "item")
    row, case = await _item(person, item_id)
    draft_id = request.query.get("draft", "")
    values: dict[str, Any] = {"item": row, "draft_id": draft_id}
    if row["kind"] == "letter":
        if draft_id:
            text, valid = _draft(person, item_id, draft_id), True
        else:
            _, text, valid = await _letter(person, item_id)
        values |= {"text": text, "valid_text": valid, "hidden": visible.hidden_count(text),
                   "digest": hashlib.sha256(text.encode()).hexdigest()}
    else:
        values |= {"sanitized": person.media_for.get(item_id, {}).get("sanitized")}
    return page(request, "desk_release.html", context(request, **values))


@person_required
async def release(request: web.Request, person: Unlocked) -> web.StreamResponse:
    item_id = _checked(request, "item")
    form = await form_of(request)
    row, case = await _item(person, item_id)
    if row["kind"] == "video":
        sanitized = person.plain.get(person.media_for.get(item_id, {}).get("sanitized", ""))

        async def work(job: Job) -> None:
            rendition = io.BytesIO(sanitized.data) if sanitized is not None else None
            # The rendition the mediator watched is the one delivered, byte for byte.
            await person.client.release(item_id, rendition, "video/mp4" if sanitized else None,
                                        progress=job.progress, transcode_progress=job.progress,
                                        already_sanitized=sanitized is not None)

        job = jobs.start(person, "release", item_id, work)
        raise web.HTTPSeeOther(f"/items/{item_id}/done?action=release&job={job.id}")
    draft_id = form.get("draft_id", "")
    if draft_id:
        text = _draft(person, item_id, draft_id)
        # The release carries what the mediator confirmed, byte for byte: the page named its digest.
        if hashlib.sha256(text.encode()).hexdigest() != form.get("digest"):
            raise web.HTTPSeeOther(f"/items/{item_id}/edit")
        await person.client.release(item_id, io.BytesIO(text.encode("utf-8")), "text/plain; charset=utf-8")
        person.drafts.pop(draft_id, None)
    else:
        _, text, valid = await _letter(person, item_id)
        if not valid or hashlib.sha256(text.encode()).hexdigest() != form.get("digest"):
            raise web.HTTPSeeOther(f"/items/{item_id}")
        await person.client.release(item_id)
    raise web.HTTPSeeOther(f"/items/{item_id}/done?action=release")


@person_required
async def confirm_return(request: web.Request, person: Unlocked) -> web.StreamResponse:
    item_id = _checked(request, "item")
    row, case = await _item(person, item_id)
    kept = person.unsent.get(request.query.get("unsent", ""))
    if kept is not None and kept.to != item_id:
        kept = None
    return page(request, "desk_return.html", context(request, item=row, error=kept.error if kept else None,
                                                      note=kept.text if kept else ""))


@person_required
async def return_to_sender(request: web.Request, person: Unlocked) -> web.StreamResponse:
    item_id = _checked(request, "item")
    row, case = await _item(person, item_id)
    note = _normalized((await form_of(request)).get("note", "")).strip()
    if not note:
        return page(request, "desk_return.html", context(
            request, item=row, note="", error=_("Write a note for the sender: it says why the item comes back.")),
            status=422)
    try:
        await person.client.return_to_sender(item_id, note)
    except KEPT_FAILURES as failure:
        # The note is not lost: the form comes back at its own address (a page answering the POST
        # would keep the note in the browser's files), with it and why.
        key = person.keep_unsent(item_id, note, describe(failure, "desk"))
        raise web.HTTPSeeOther(f"/items/{item_id}/return?unsent={key}") from None
    raise web.HTTPSeeOther(f"/items/{item_id}/done?action=return")  # a page answering the POST would keep the note


@person_required
async def confirm_withhold(request: web.Request, person: Unlocked) -> web.StreamResponse:
    row, case = await _item(person, _checked(request, "item"))
    return page(request, "desk_withhold.html", context(request, item=row, reasons=reasons("withhold", WITHHOLD_REASONS),
                                                       error=None))


@person_required
async def withhold(request: web.Request, person: Unlocked) -> web.StreamResponse:
    item_id = _checked(request, "item")
    row, case = await _item(person, item_id)
    reason = (await form_of(request)).get("reason", "")
    if reason not in WITHHOLD_REASONS:
        return page(request, "desk_withhold.html", context(
            request, item=row, reasons=reasons("withhold", WITHHOLD_REASONS), error=_("Choose a reason from the list.")),
            status=422)
    await person.client.withhold(item_id, reason)
    raise web.HTTPSeeOther(f"/items/{item_id}/done?action=withhold")


@person_required
async def done(request: web.Request, person: Unlocked) -> web.StreamResponse:
    """What a decision did, at its own address (answered after the POST, so it can be reloaded)."""
    item_id = _checked(request, "item")
    action = request.query.get("action", "")
    if action not in ("release", "return", "withhold"):
        raise web.HTTPNotFound()
    row, case = await _item(person, item_id)
    job = person.jobs.get(request.query.get("job", ""))
    who = row["from_label"] if action == "return" else row["to_label"]
    # Working through the queue: the next item waiting (oldest first), and how many wait.
    waiting = [q for q in await _queue(person) if q["id"] != item_id]
    return page(request, "desk_done.html", context(request, item=row, job=job.public() if job else None,
                                                    action=action, recipient=who,
                                                    next_item=waiting[0] if waiting else None, waiting=len(waiting)))


# -- videos: opened and sanitized in memory -------------------------------------------------------


@person_required
async def open_video(request: web.Request, person: Unlocked) -> web.StreamResponse:
    item_id = _checked(request, "item")

    async def work(job: Job) -> None:
        buffer = io.BytesIO()
        item = await person.client.open_item(item_id, buffer, progress=job.progress)
        token = person.keep(Plain(buffer.getvalue(), item["manifest"]["content_type"], item_id))
        person.media_for.setdefault(item_id, {})["original"] = token

    jobs.start(person, "open-video", item_id, work)
    raise web.HTTPSeeOther(f"/items/{item_id}")


@person_required
async def sanitize(request: web.Request, person: Unlocked) -> web.StreamResponse:
    """The rendition the recipient would get: re-encoded, every location, device and time tag gone.

    ffmpeg needs files: the original and the rendition exist only in the interface's private
    scratch directory in memory (tmpfs), for the length of the transcode."""
    item_id = _checked(request, "item")
    original = person.plain.get(person.media_for.get(item_id, {}).get("original", ""))
    if original is None:
        raise web.HTTPSeeOther(f"/items/{item_id}")
    scratch = state_of(request).scratch
    assert scratch is not None

    async def work(job: Job) -> None:
        workdir = Path(await asyncio.to_thread(_private_dir, scratch))
        try:
            src, dst = workdir / "original", workdir / "sanitized.mp4"
            src.write_bytes(original.data)
            await media.sanitize(src, dst, progress=job.progress, timeout_s=3600)
            token = person.keep(Plain(dst.read_bytes(), "video/mp4", item_id))
            person.media_for.setdefault(item_id, {})["sanitized"] = token
        finally:
            for leftover in workdir.iterdir():
                leftover.unlink()
            workdir.rmdir()

    jobs.start(person, "sanitize", item_id, work)
    raise web.HTTPSeeOther(f"/items/{item_id}")


def _private_dir(parent: Path) -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="video-", dir=parent)


# -- the case, the mediator's inbox and messages --------------------------------------------------


@person_required
async def case_view(request: web.Request, person: Unlocked) -> web.StreamResponse:
    case_id = _checked(request, "case")
    case = await person.client.call("GET", f"/v1/cases/{case_id}")
    timeline = await person.client.call("GET", f"/v1/cases/{case_id}/timeline?limit=1000")
    events = sorted(timeline["events"], key=lambda e: e["seq"])
    _name_items(events)
    events.reverse()
    return page(request, "desk_case.html", context(
        request, case=case, case_ref=case_ref(case), events=events, participants=case.get("participants", []),
        pause_reasons=reasons("pause", PAUSE_REASONS), resume_reasons=reasons("resume", RESUME_REASONS),
        sent=bool(request.query.get("sent")), reason_missing=request.query.get("reason") == "missing"))


ITEM_NAMES = {"letter": N_("letter %(number)d"), "video": N_("video message %(number)d")}


def _name_items(events: list[dict[str, Any]]) -> None:
    """Name each item of the case by kind and order of arrival ("letter 3"), so that every line of
    the timeline about it says which one it is (the record holds no subject or content)."""
    counts: dict[str, int] = {}
    names: dict[str, str] = {}
    for event in events:
        item, kind = event.get("item_id"), event.get("item_kind")
        if item and kind in ITEM_NAMES and item not in names:
            counts[kind] = counts.get(kind, 0) + 1
            names[item] = _(ITEM_NAMES[kind]) % {"number": counts[kind]}
        event["thing"] = names.get(item or "")


@person_required
async def pause(request: web.Request, person: Unlocked) -> web.StreamResponse:
    """Pause or resume the case now, with a reason from the fixed lists (audited by the relay)."""
    case_id = _checked(request, "case")
    form = await form_of(request)
    paused = form.get("paused") == "1"
    reason = form.get("reason", "")
    if reason not in (PAUSE_REASONS if paused else RESUME_REASONS):
        raise web.HTTPSeeOther(f"/cases/{case_id}?reason=missing")
    await person.client.call("POST", f"/v1/cases/{case_id}/pause", json_body={"paused": paused, "reason": reason})
    raise web.HTTPSeeOther(f"/cases/{case_id}")


@person_required
async def inbox(request: web.Request, person: Unlocked) -> web.StreamResponse:
    rows = await person.client.call("GET", "/v1/review/inbox")
    return page(request, "desk_inbox.html", context(request, rows=[_row(r, {}) for r in rows]))


@person_required
async def inbox_letter(request: web.Request, person: Unlocked) -> web.StreamResponse:
    item_id = _checked(request, "item")
    row, case = await _item(person, item_id)
    _, text, valid = await _letter(person, item_id)
    if row.get("state") != "delivered":
        await person.client.call("POST", f"/v1/items/{item_id}/read")
    return page(request, "desk_inbox_letter.html", context(request, item=row, text=text, valid_text=valid,
                                                           hidden=visible.hidden_count(text)))


@person_required
async def compose(request: web.Request, person: Unlocked) -> web.StreamResponse:
    case_id = request.query.get("case", "")
    if not ids.valid("case", case_id):
        raise web.HTTPNotFound()
    case = await person.client.call("GET", f"/v1/cases/{case_id}")
    kept = person.unsent.get(request.query.get("unsent", ""))
    return page(request, "desk_write.html", context(request, case=case, case_ref=case_ref(case),
                                                    error=kept.error if kept else None, text=kept.text if kept else "",
                                                    to=kept.to if kept else request.query.get("to", "")))


@person_required
async def send(request: web.Request, person: Unlocked) -> web.StreamResponse:
    form = await form_of(request)
    case_id, to = form.get("case", ""), form.get("to", "")
    if not ids.valid("case", case_id):
        raise web.HTTPNotFound()
    case = await person.client.call("GET", f"/v1/cases/{case_id}")
    text = _normalized(form.get("text", ""))
    if to not in {p["id"] for p in case.get("participants", [])} or not text.strip():
        return page(request, "desk_write.html", context(
            request, case=case, case_ref=case_ref(case), to=to, text="",
            error=_("Choose who the message is for and write it before sending.")), status=422)
    try:
        await person.client.send(case_id=case_id, recipient=to, src=io.BytesIO(text.encode("utf-8")))
    except KEPT_FAILURES as failure:
        key = person.keep_unsent(to, text, describe(failure, "desk"))
        raise web.HTTPSeeOther(f"/write?case={case_id}&unsent={key}") from None
    raise web.HTTPSeeOther(f"/cases/{case_id}?sent=1")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/queue.json", queue_state)
    app.router.add_get("/items/{item}", item_view)
    app.router.add_get("/items/{item}/poster.jpg", poster)
    app.router.add_get("/items/{item}/edit", edit)
    app.router.add_post("/items/{item}/preview", keep_draft)
    app.router.add_get("/items/{item}/preview", preview)
    app.router.add_get("/items/{item}/release", confirm_release)
    app.router.add_post("/items/{item}/release", release)
    app.router.add_get("/items/{item}/return", confirm_return)
    app.router.add_post("/items/{item}/return", return_to_sender)
    app.router.add_get("/items/{item}/withhold", confirm_withhold)
    app.router.add_post("/items/{item}/withhold", withhold)
    app.router.add_get("/items/{item}/done", done)
    app.router.add_post("/items/{item}/open-video", open_video)
    app.router.add_post("/items/{item}/sanitize", sanitize)
    app.router.add_get("/cases/{case}", case_view)
    app.router.add_post("/cases/{case}/pause", pause)
    app.router.add_get("/inbox", inbox)
    app.router.add_get("/inbox/{item}", inbox_letter)
    app.router.add_get("/write", compose)
    app.router.add_post("/write", send)
