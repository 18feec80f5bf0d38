"""Sending an item: check the relay's limits, seal to the case's mediators (never to the
recipient), sign the manifest, upload; and the outbox that finishes sends after a crash."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp

import media
from media import MediaError
from relay import envelope, ids
from relay.client.sdk.base import (
    CHUNK,
    InvalidRecipient,
    OverLimit,
    Person,
    ProblemError,
    Progress,
    TranscodeProgress,
    VerificationError,
)
from relay.client.sdk.transfer import Sealed, Transfer, _write_durably
from relay.clock import stamp
from relay.envelope import Domain
from relay.wire import MAX_POSTER_BYTES


class Sending(Transfer):
    async def send(self, *, case_id: str, recipient: str, src: BinaryIO, kind: str = "letter",
                   content_type: str = "text/plain; charset=utf-8", progress: Progress | None = None,
                   resumable: bool | None = None, outbox: Path | None = None,
                   already_sanitized: bool = False, shrink: bool = False,
                   transcode_progress: TranscodeProgress | None = None,
                   seal_progress: Progress | None = None) -> dict[str, Any]:
        """Seal ``src`` and submit it. ``recipient`` is a participant's id or ``"mediators"``.

        A participant seals the content key to the case's mediators and themself only; the
        recipient gets a key only from a mediator's release. A mediator's own message is sealed
        to the recipient too and carries the mediator's signed release.

        With ``outbox`` (a private directory), the sealed file, its signed manifest and the upload
        id are kept there until the relay acknowledges the item, so :meth:`resume_outbox` can
        finish the send after a crash or a restart without sealing again. Only ciphertext and
        signed metadata are kept: no plaintext, no key.

        With ``shrink`` (a video), the file is first turned into the delivery profile here, on
        the sender's device: smaller to send, and its location, device and time tags never leave
        the device at all. The mediator's desk still sanitizes it again before any release.

        Progress: ``transcode_progress`` while a video is re-encoded, ``seal_progress(sealed
        bytes, sealed size)`` while it is sealed (from the first byte), ``progress`` while the
        sealed file is uploaded.
        """
        me, _ = self._me()
        if recipient == me:
            raise InvalidRecipient(recipient, "self")
        await self.check_limits(src, kind)
        readers, mine = await self._readers(case_id, me, recipient)
        if kind == "video" and not already_sanitized and (mine.role == "mediator" or shrink):
            # A mediator's own video is delivered as sent: it is sanitized here first, like any
            # other. A participant may ask for the same before sealing (``shrink``).
            with tempfile.TemporaryDirectory(prefix="relay-desk-") as scratch:
                raw, clean = Path(scratch) / "original", Path(scratch) / "sanitized.mp4"
                with open(raw, "wb") as copy:
                    shutil.copyfileobj(src, copy, CHUNK)
                await media.sanitize(raw, clean, timeout_s=3600, progress=transcode_progress)
                with open(clean, "rb") as sanitized:
                    return await self.send(case_id=case_id, recipient=recipient, src=sanitized, kind="video",
                                           content_type="video/mp4", progress=progress, resumable=resumable,
                                           outbox=outbox, already_sanitized=True, seal_progress=seal_progress)
        key = envelope.new_content_key()
        item_id = ids.new("item")
        entry = outbox / item_id if outbox is not None else None
        if entry is not None:
            entry.mkdir(parents=True, mode=0o700)
        poster = await self._sealed_poster(key, src) if kind == "video" else None
        sealed = await self._seal_file(key, src, into=entry / "sealed.bin" if entry else None, progress=seal_progress)
        try:
            meta = await self._signed_meta(item_id, case_id, kind, recipient, content_type, key, sealed, poster,
                                           readers, mediator=mine.role == "mediator")
            if entry is not None:
                _write_durably(entry / "meta.json", json.dumps(meta).encode())
                return await self._finish_outgoing(entry, progress)
            return await self._submit_sealed("/v1/items", meta, sealed, progress, resumable)
        finally:
            if entry is None:
                sealed.path.unlink(missing_ok=True)
            elif not (entry / "meta.json").exists():
                shutil.rmtree(entry, ignore_errors=True)  # failed before it was ready to resume

    async def _readers(self, case_id: str, me: str, recipient: str) -> tuple[set[str], Person]:
        """Who gets the content key: the case's mediators (each confirmed a mediator along the
        enrollment chain) and the sender; for a mediator's own message, the recipient too."""
        case = await self.call("GET", f"/v1/cases/{case_id}")
        mediators = {m["id"] for m in case["mediators"] if m.get("status", "active") == "active"}
        # The relay names the case's mediators; the enrollment chain must confirm each one *is* a
        # mediator, or a relay that listed the recipient as a "mediator" would get them a key.
        for pid in mediators:
            if (await self.person(pid)).role != "mediator":
                raise VerificationError("the relay listed someone who is not a mediator")
        readers = mediators | {me}
        mine = await self.person(me)
        if mine.role == "mediator" and recipient != "mediators":
            if (await self.person(recipient)).role != "participant":
                raise InvalidRecipient(recipient, "not-participant")
            readers.add(recipient)
        elif recipient in mediators:
            raise InvalidRecipient(recipient, "mediator")  # "mediators" is how a participant writes to them
        return readers, mine

    async def _signed_meta(self, item_id: str, case_id: str, kind: str, recipient: str, content_type: str,
                           key: bytes, sealed: Sealed, poster: bytes | None, readers: set[str], *,
                           mediator: bool) -> dict[str, Any]:
        """The signed manifest (and, for a mediator's own message, its signed release) to submit."""
        me, identity = self._me()
        manifest = envelope.item_manifest(
            item_id=item_id, case_id=case_id, kind=kind, sender=me, recipient=recipient,
            created_at=stamp(self.clock.now()), content_type=content_type, size=sealed.size, hash=sealed.hash,
            keys={pid: envelope.seal_key(key, (await self.person(pid)).keys.box_pk) for pid in sorted(readers)},
            poster=None if poster is None else {"content_type": "image/jpeg", "size": len(poster),
                                                "hash": envelope.blob_hash(poster)})
        meta: dict[str, Any] = {"manifest": manifest,
                                "signature": envelope.sign(Domain.MANIFEST, manifest, identity.signing_key)}
        if poster is not None:
            meta["poster"] = envelope.b64e(poster)
        if mediator:
            decision = envelope.decision_manifest(
                item_id=item_id, case_id=case_id, manifest_hash=envelope.digest(manifest),
                sender={"id": me, "fingerprint": identity.public.fingerprint()}, decision="release",
                mediator=me, decided_at=stamp(self.clock.now()), recipient=recipient,
                delivery={"content_type": content_type, "size": sealed.size, "hash": sealed.hash,
                          "keys": manifest["keys"]}, reason=None)
            meta |= {"decision": decision,
                     "decision_signature": envelope.sign(Domain.DECISION, decision, identity.signing_key)}
        return meta

    async def resume_outbox(self, outbox: Path, progress: Progress | None = None) -> list[dict[str, Any]]:
        """Finish every send an earlier run left in ``outbox`` (same person, same device).

        Each entry is tried on its own: one that fails (its answer is in the list, under
        ``error``) stays for a later try and does not stop the others.
        """
        done: list[dict[str, Any]] = []
        for entry in sorted(p for p in outbox.iterdir() if (p / "meta.json").is_file()) if outbox.is_dir() else []:
            try:
                done.append(await self._finish_outgoing(entry, progress))
            except (ProblemError, aiohttp.ClientError, ValueError, OSError) as exc:
                done.append({"id": entry.name, "error": str(exc)})
        return done

    async def _finish_outgoing(self, entry: Path, progress: Progress | None) -> dict[str, Any]:
        """Upload (resuming where the relay's acknowledged offset says), submit, then forget."""
        meta = json.loads((entry / "meta.json").read_text())
        sealed = entry / "sealed.bin"
        size = sealed.stat().st_size
        state = entry / "upload.json"
        upload_id = json.loads(state.read_text())["upload_id"] if state.is_file() else None
        if upload_id is not None:
            try:
                await self._raw("HEAD", f"/v1/uploads/{upload_id}", headers={"Tus-Resumable": "1.0.0"})
            except ProblemError as gone:
                if gone.status not in (404, 410):
                    raise
                if await self._already_sent(meta["manifest"]["item_id"]):  # consumed by a submit whose answer was lost
                    shutil.rmtree(entry)
                    return {"id": meta["manifest"]["item_id"], "already_sent": True}
                upload_id = None  # expired: start the upload again
        if upload_id is None:
            upload_id = await self.create_upload(size)
            _write_durably(state, json.dumps({"upload_id": upload_id}).encode())
        await self.upload_resumable(sealed, size, progress, upload_id=upload_id)
        try:
            result: dict[str, Any] = await self._upload("/v1/items", {**meta, "upload_id": upload_id}, None, None)
        except ProblemError as refused:
            if refused.status != 409 or not await self._already_sent(meta["manifest"]["item_id"]):
                raise
            result = {"id": meta["manifest"]["item_id"], "already_sent": True}
        shutil.rmtree(entry)
        return result

    async def _already_sent(self, item_id: str) -> bool:
        """An earlier run's submit went through but its answer was lost (the item id is ours)."""
        return any(i["id"] == item_id for i in await self.call("GET", "/v1/items/sent"))

    async def _sealed_poster(self, key: bytes, src: BinaryIO) -> bytes | None:
        """A still of the video for the mediator's queue, sealed under the item's key; None when
        the source is not a file on disk or has no picture (an audio-only message)."""
        path = Path(src.name) if isinstance(getattr(src, "name", None), str) else None
        if path is None or not path.is_file():
            return None
        with tempfile.TemporaryDirectory(prefix="relay-poster-") as scratch:  # mode 0700
            still = Path(scratch) / "poster.jpg"
            try:
                await media.poster(path, still, timeout_s=120)
            except MediaError:
                return None
            sealed = envelope.encrypt_bytes(key, still.read_bytes())
        return sealed if len(sealed) <= MAX_POSTER_BYTES else None

    async def check_limits(self, src: BinaryIO, kind: str) -> None:
        """Check what the relay announces before sealing anything (the relay checks again)."""
        limits = await self.call("GET", "/v1/limits")
        if kind not in limits["kinds"]:
            raise OverLimit(f"the relay does not accept {kind} items")
        try:
            size = os.fstat(src.fileno()).st_size - src.tell()
            path: Path | None = Path(src.name) if isinstance(getattr(src, "name", None), str) else None
        except (AttributeError, OSError, io.UnsupportedOperation):
            size, path = len(src.getbuffer()) if isinstance(src, io.BytesIO) else 0, None
        most = limits["max_video_bytes"] if kind == "video" else limits["max_letter_bytes"]
        if envelope.ciphertext_size(size) > most:
            raise OverLimit(f"{size} bytes is more than the relay accepts for a {kind} ({most} bytes sealed)")
        if kind == "video" and path is not None:
            info = await media.probe(path)  # a MediaError here says the file is not a usable video
            if info.duration_s is not None and info.duration_s > limits["max_video_seconds"]:
                raise OverLimit(f"the video lasts {info.duration_s:.0f} s; the most is {limits['max_video_seconds']} s")
