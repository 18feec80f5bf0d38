"""The client SDK: everything a coordinator console, participant device, mediator desk or
institutional terminal does, over HTTP, with the cryptography done here, on the endpoint.

Plaintext exists only in this process: letters are sealed before they leave and opened after
they arrive, streamed through ``relay.envelope`` in 64 KiB chunks so memory stays flat for any
size. Ciphertext waiting to be uploaded goes to a private temp file (never plaintext). Every
key the client seals to, and every signature it trusts, is checked against the enrollment
chain back to the trust root this device was provisioned with, and the roles it states are
enforced here too (only mediators get a participant's content key).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO
from urllib.parse import urlsplit

import aiohttp

import media
from media import MediaError
from policies.screening import side_of
from relay import envelope, ids
from relay.clock import SystemClock, stamp
from relay.envelope import Domain, Identity, PublicIdentity
from relay.wire import DEVICE_HEADER, MAX_POSTER_BYTES, RESUMABLE_ABOVE
from storage.hashing import HashBehind, write_all

Progress = Callable[[int, int], None]  # (bytes done, bytes total)
TranscodeProgress = Callable[[float, float], None]  # (seconds done, seconds total)
CHUNK = 64 * 1024


class ProblemError(Exception):
    """The relay answered with an RFC 9457 problem."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.type = str(problem.get("type", "")).rsplit(":", 1)[-1]
        super().__init__(problem.get("title") or f"HTTP {status}")


class OverLimit(Exception):
    """The content is larger, longer or of a kind the relay does not accept: nothing was sent."""


class InsecureTransport(Exception):
    """The relay's address is not https (and not loopback): tokens would travel in clear."""


class VerificationError(Exception):
    """Something the relay sent did not verify: a signature, a hash, a key chain. Not shown."""


@dataclass(frozen=True)
class Sealed:
    path: Path
    size: int
    hash: str


@dataclass(frozen=True)
class Person:
    id: str
    role: str
    side: str | None
    keys: PublicIdentity


class Client:
    def __init__(self, url: str, device_token: str | None = None, *, trust_root: str | None = None,
                 lang: str = "en", http: aiohttp.ClientSession | None = None) -> None:
        self.url = url.rstrip("/")
        _require_tls(self.url)
        self.device_token = device_token
        self.trust_root = envelope.b64d(trust_root) if trust_root else None
        self.lang = lang
        self.session_token: str | None = None
        self.person_id: str | None = None
        self.identity: Identity | None = None
        self._http = http
        self._own_http = http is None
        self._people: dict[str, Person] = {}
        self._unlocked: Identity | None = None
        self.clock = SystemClock()

    async def __aenter__(self) -> Client:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=120))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self.session_token:
            try:
                await self.logout()
            except (ProblemError, aiohttp.ClientError):
                pass
        if self._unlocked is not None:
            # A key unlocked here (on a terminal) lives for this session only.
            self._unlocked.wipe()
            self._unlocked = None
        self.identity = None
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    # -- transport ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Accept-Language": self.lang, "Accept": "application/json, application/problem+json"}
        if self.device_token:
            headers[DEVICE_HEADER] = self.device_token
        if self.session_token:
            headers["Authorization"] = f"Bearer {self.session_token}"
        return headers

    async def call(self, method: str, path: str, *, json_body: Any = None, data: Any = None) -> Any:
        assert self._http is not None, "use 'async with Client(...)'"
        async with self._http.request(method, self.url + path, json=json_body, data=data,
                                      headers=self._headers()) as response:
            return await _decode(response)

    @asynccontextmanager
    async def _download(self, path: str) -> AsyncIterator[aiohttp.ClientResponse]:
        assert self._http is not None
        async with self._http.get(self.url + path, headers=self._headers()) as response:
            if response.status >= 400:
                await _decode(response)
            yield response

    # -- sessions -------------------------------------------------------------------------------

    async def login(self, person_id: str, identity: Identity) -> dict[str, Any]:
        """Win a session by signing the relay's fresh challenge with this person's key."""
        challenge = await self.call("POST", "/v1/auth/challenge", json_body={"person_id": person_id})
        statement = envelope.login_statement(challenge=challenge["challenge"], device_id=self._device_id(),
                                             person_id=person_id)
        session = await self.call("POST", "/v1/auth/session", json_body={
            "challenge_id": challenge["challenge_id"],
            "signature": envelope.sign(Domain.LOGIN, statement, identity.signing_key)})
        self.session_token = session["session_token"]
        self.person_id = person_id
        self.identity = identity
        return session  # type: ignore[no-any-return]

    async def logout(self) -> None:
        if self.session_token:
            try:
                await self.call("DELETE", "/v1/auth/session")
            finally:
                self.session_token = None

    async def unlock_on_terminal(self, person_id: str, passphrase: str, **kdf: int) -> Identity:
        """On a terminal: fetch the person's sealed key bundle and open it in memory."""
        bundle = await self.call("GET", f"/v1/people/{person_id}/key-bundle")
        try:
            self._unlocked = envelope.open_identity(envelope.b64d(bundle["key_bundle"]), passphrase, **kdf)
        except envelope.EnvelopeError:
            raise VerificationError("the passphrase does not open this key") from None
        return self._unlocked

    def _device_id(self) -> str:
        assert self.device_token, "no device token"
        return self.device_token.split(".", 1)[0]

    def _me(self) -> tuple[str, Identity]:
        if self.person_id is None or self.identity is None:
            raise RuntimeError("log in first")
        return self.person_id, self.identity

    # -- the signed directory -------------------------------------------------------------------

    async def person(self, person_id: str, _depth: int = 0) -> Person:
        """A person's keys and role, verified along the enrollment chain to the trust root."""
        if person_id in self._people:
            return self._people[person_id]
        if self.trust_root is None or _depth > 4:
            raise VerificationError("no trust root, or an enrollment chain too long")
        entry = await self.call("GET", f"/v1/directory/{person_id}")
        try:
            doc = json.loads(envelope.b64d(entry["enrollment"]))
            if doc.get("person_id") != person_id:
                raise VerificationError("the directory answered for someone else")
            if doc["enrolled_by"] == person_id:
                signer_pk = envelope.b64d(doc["sign_pk"])
                if signer_pk != self.trust_root:
                    raise VerificationError("a self-signed enrollment that is not the trust root")
            else:
                signer = await self.person(doc["enrolled_by"], _depth + 1)
                if signer.role != "coordinator":
                    raise VerificationError("enrolled by someone who is not a coordinator")
                signer_pk = signer.keys.sign_pk
            envelope.verify(Domain.ENROLLMENT, doc, entry["enrollment_sig"], signer_pk)
            person = Person(person_id, doc["role"], doc.get("side"),
                            PublicIdentity(envelope.b64d(doc["sign_pk"]), envelope.b64d(doc["box_pk"])))
        except (envelope.EnvelopeError, KeyError, ValueError, TypeError):
            raise VerificationError("an enrollment did not verify") from None
        self._people[person_id] = person
        return person

    # -- coordinator ----------------------------------------------------------------------------

    async def enroll(self, *, public: PublicIdentity, label: str, role: str, relation: str | None = None,
                     institution_id: str | None = None, key_bundle: bytes | None = None) -> dict[str, Any]:
        me, identity = self._me()
        person_id = ids.new("person")
        doc = envelope.enrollment(
            person_id=person_id, role=role, side=side_of(relation) if role == "participant" else None,
            sign_pk=envelope.b64e(public.sign_pk), box_pk=envelope.b64e(public.box_pk), enrolled_by=me,
            enrolled_at=stamp(self.clock.now()))
        body: dict[str, Any] = {"enrollment": doc, "enrollment_sig": envelope.sign(Domain.ENROLLMENT, doc,
                                                                                   identity.signing_key),
                                "label": label, "relation": relation, "institution_id": institution_id}
        if key_bundle is not None:
            body["key_bundle"] = envelope.b64e(key_bundle)
        return await self.call("POST", "/v1/people", json_body=body)  # type: ignore[no-any-return]

    # -- sending --------------------------------------------------------------------------------

    async def send(self, *, case_id: str, recipient: str, src: BinaryIO, kind: str = "letter",
                   content_type: str = "text/plain; charset=utf-8", progress: Progress | None = None,
                   resumable: bool | None = None, outbox: Path | None = None,
                   already_sanitized: bool = False, shrink: bool = False,
                   transcode_progress: TranscodeProgress | None = None) -> dict[str, Any]:
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
        """
        me, identity = self._me()
        await self.check_limits(src, kind)
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
                raise VerificationError("a mediator writes to participants only")
            readers.add(recipient)
        elif recipient in readers:
            raise VerificationError("the recipient must not get a key before the mediator's release")
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
                                           outbox=outbox, already_sanitized=True)
        key = envelope.new_content_key()
        item_id = ids.new("item")
        entry = outbox / item_id if outbox is not None else None
        if entry is not None:
            entry.mkdir(parents=True, mode=0o700)
        poster = await self._sealed_poster(key, src) if kind == "video" else None
        sealed = await self._seal_file(key, src, into=entry / "sealed.bin" if entry else None)
        try:
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
            if mine.role == "mediator":
                decision = envelope.decision_manifest(
                    item_id=item_id, case_id=case_id, manifest_hash=envelope.digest(manifest), decision="release",
                    mediator=me, decided_at=stamp(self.clock.now()), recipient=recipient,
                    delivery={"content_type": content_type, "size": sealed.size, "hash": sealed.hash,
                              "keys": manifest["keys"]}, reason=None)
                meta |= {"decision": decision,
                         "decision_signature": envelope.sign(Domain.DECISION, decision, identity.signing_key)}
            if entry is not None:
                _write_durably(entry / "meta.json", json.dumps(meta).encode())
                return await self._finish_outgoing(entry, progress)
            if resumable or (resumable is None and sealed.size > RESUMABLE_ABOVE):
                meta["upload_id"] = await self.upload_resumable(sealed.path, sealed.size, progress)
                return await self._upload("/v1/items", meta, None, None)  # type: ignore[no-any-return]
            return await self._upload("/v1/items", meta, sealed, progress)
        finally:
            if entry is None:
                sealed.path.unlink(missing_ok=True)
            elif not (entry / "meta.json").exists():
                shutil.rmtree(entry, ignore_errors=True)  # failed before it was ready to resume

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

    async def upload_resumable(self, path: Path, size: int, progress: Progress | None = None, *,
                               upload_id: str | None = None, chunk_size: int = 8 * 1024 * 1024,
                               attempts: int = 6) -> str:
        """Send a sealed file with tus 1.0, resuming from the relay's acknowledged offset after a
        lost connection (and, given the ``upload_id`` of an earlier run, after a restart).

        Each PATCH carries at most ``chunk_size`` bytes with its SHA-256 in ``Upload-Checksum``;
        memory use is one chunk. Returns the upload id to name in the submission.
        """
        tus = {"Tus-Resumable": "1.0.0"}
        if upload_id is None:
            upload_id = await self.create_upload(size)
        failures = 0
        while True:
            try:
                head = await self._raw("HEAD", f"/v1/uploads/{upload_id}", headers=tus)
                offset = int(head.headers["Upload-Offset"])
                with open(path, "rb") as src:
                    while offset < size:
                        src.seek(offset)
                        data = src.read(min(chunk_size, size - offset))
                        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
                        answer = await self._raw("PATCH", f"/v1/uploads/{upload_id}", data=data, headers={
                            **tus, "Upload-Offset": str(offset), "Upload-Checksum": f"sha256 {digest}",
                            "Content-Type": "application/offset+octet-stream"})
                        offset = int(answer.headers["Upload-Offset"])
                        if progress:
                            progress(offset, size)
                return upload_id
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
                failures += 1
                if failures >= attempts:
                    raise
                await asyncio.sleep(min(0.2 * 2**failures, 10))  # then ask where the relay got to

    async def create_upload(self, size: int) -> str:
        """tus creation: a new resumable upload of ``size`` bytes; its id."""
        created = await self._raw("POST", "/v1/uploads", headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(size)})
        return created.headers["Location"].rsplit("/", 1)[-1]

    async def _raw(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        """A request whose answer is in its headers (tus); problems still raise ProblemError."""
        assert self._http is not None
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        async with self._http.request(method, self.url + path, headers=headers, **kwargs) as response:
            if response.status >= 400:
                await _decode(response)
            await response.read()
            return response

    async def _seal_file(self, key: bytes, src: BinaryIO, into: Path | None = None) -> Sealed:
        """Encrypt ``src`` into a sealed file (a private temp file, or ``into``), hashing as it goes.

        Runs off the event loop, on two cores: this thread encrypts and writes (libsodium drops
        the GIL) while another reads the written bytes back and hashes them (libsodium drops it
        too), so sealing runs near the speed of the slower of the two. Memory: a few MiB.
        """
        if into is not None:
            fd, name = os.open(into, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), str(into)
        else:
            fd, name = tempfile.mkstemp(prefix="relay-sealed-", suffix=".bin")
        # Only an outbox entry must survive a power cut; a temp file is used up at once. The
        # work runs in a thread, which cancellation cannot stop: on cancellation it is told to
        # stop and waited for, so it never reads the caller's file after this returns, and its
        # file is removed only once it has closed it.
        stop = threading.Event()
        work = asyncio.ensure_future(asyncio.to_thread(_seal_pipeline, key, src, fd, durable=into is not None,
                                                       stop=stop))
        try:
            size, digest = await asyncio.shield(work)
        except BaseException:
            stop.set()
            await asyncio.wait([work])
            if not work.cancelled():
                work.exception()  # retrieved: what the caller gets is what interrupted it
            os.unlink(name)
            raise
        return Sealed(Path(name), size, digest)

    async def _upload(self, path: str, meta: dict[str, Any], sealed: Sealed | None,
                      progress: Progress | None) -> dict[str, Any]:
        with aiohttp.MultipartWriter("form-data") as form:
            part = form.append_json(meta)
            part.set_content_disposition("form-data", name="meta")
            handle: IO[bytes] | None = None
            if sealed is not None:
                handle = open(sealed.path, "rb")  # noqa: SIM115 - closed below, after the upload
                part = form.append(_file_chunks(handle, sealed.size, progress),
                                   {"Content-Type": "application/octet-stream"})
                part.set_content_disposition("form-data", name="content", filename="sealed.bin")
            try:
                return await self.call("POST", path, data=form)  # type: ignore[no-any-return]
            finally:
                if handle is not None:
                    handle.close()

    # -- the mediator's desk --------------------------------------------------------------------

    async def open_item(self, item_id: str, dst: BinaryIO, progress: Progress | None = None) -> dict[str, Any]:
        """Download, verify the sender's signature and the hash, decrypt into ``dst``."""
        item, key = await self._signed_item(item_id)
        manifest = item["manifest"]
        await self._fetch_plaintext(f"/v1/items/{item_id}/content", key, manifest["size"], manifest["hash"], dst,
                                    progress)
        return item

    async def poster(self, item_id: str, dst: BinaryIO) -> bool:
        """A video's poster frame for the queue, verified against the sender's signed manifest and
        decrypted into ``dst`` (a small JPEG, no metadata). False if the item has none."""
        item, key = await self._signed_item(item_id)
        poster = item["manifest"].get("poster")
        if poster is None:
            return False
        await self._fetch_plaintext(f"/v1/items/{item_id}/poster", key, poster["size"], poster["hash"], dst, None)
        return True

    async def _signed_item(self, item_id: str) -> tuple[dict[str, Any], bytes]:
        """The item with its manifest verified against the sender's enrolled key, and the content
        key sealed to me."""
        me, identity = self._me()
        item: dict[str, Any] = await self.call("GET", f"/v1/items/{item_id}")
        manifest = item["manifest"]
        sender = await self.person(manifest.get("sender", ""))
        try:
            envelope.verify(Domain.MANIFEST, manifest, item["signature"], sender.keys.sign_pk)
            if manifest["item_id"] != item_id or me not in manifest["keys"]:
                raise VerificationError("the manifest is for another item or not sealed to me")
            return item, envelope.open_key(manifest["keys"][me], identity)
        except envelope.EnvelopeError:
            raise VerificationError("the item's signature or key did not verify") from None

    async def release(self, item_id: str, rendition: BinaryIO | None = None, content_type: str | None = None,
                      progress: Progress | None = None, transcode_progress: TranscodeProgress | None = None,
                      media_timeout_s: float = 3600) -> dict[str, Any]:
        """Release to the recipient: the item as written, or ``rendition`` (an edited version).

        Either way the delivery is re-encrypted under a fresh key sealed to the recipient and
        this mediator, and the release binds the original manifest's hash. A video is always
        sanitized here first (``media.sanitize``: re-encoded to the delivery profile, every tag,
        chapter and extra stream stripped); the recipient only ever receives that rendition.
        Plaintext exists only in a private scratch directory that is removed on every path.
        """
        with tempfile.TemporaryDirectory(prefix="relay-desk-") as scratch:  # mode 0700
            original_path = Path(scratch) / "original"
            with open(original_path, "w+b") as original:
                item = await self.open_item(item_id, original)  # opening verifies the sender first
            manifest = item["manifest"]
            source_path = original_path
            if rendition is not None:
                source_path = Path(scratch) / "rendition"
                with open(source_path, "wb") as copy:
                    shutil.copyfileobj(rendition, copy, CHUNK)
            if manifest["kind"] == "video":
                sanitized = Path(scratch) / "sanitized.mp4"
                await media.sanitize(source_path, sanitized, progress=transcode_progress, timeout_s=media_timeout_s)
                source_path, content_type = sanitized, "video/mp4"
            with open(source_path, "rb") as source:
                return await self._decide(item, "release", manifest["recipient"], source,
                                          content_type or manifest["content_type"], None, progress)

    async def return_to_sender(self, item_id: str, note: str) -> dict[str, Any]:
        item = await self.open_item(item_id, _Discard())
        return await self._decide(item, "return", item["manifest"]["sender"], io.BytesIO(note.encode("utf-8")),
                                  "text/plain; charset=utf-8", None, None)

    async def withhold(self, item_id: str, reason: str) -> dict[str, Any]:
        item = await self.call("GET", f"/v1/items/{item_id}")
        return await self._decide(item, "withhold", item["manifest"]["recipient"], None, None, reason, None)

    async def _decide(self, item: dict[str, Any], decision: str, reader: str | None, src: BinaryIO | None,
                      content_type: str | None, reason: str | None, progress: Progress | None) -> dict[str, Any]:
        me, identity = self._me()
        manifest = item["manifest"]
        sealed = None
        delivery = None
        if src is not None and reader is not None:
            key = envelope.new_content_key()
            sealed = await self._seal_file(key, src)
            holders = {reader: (await self.person(reader)).keys.box_pk, me: identity.public.box_pk}
            delivery = {"content_type": content_type, "size": sealed.size, "hash": sealed.hash,
                        "keys": {pid: envelope.seal_key(key, pk) for pid, pk in sorted(holders.items())}}
        try:
            doc = envelope.decision_manifest(
                item_id=manifest["item_id"], case_id=manifest["case_id"], manifest_hash=envelope.digest(manifest),
                decision=decision, mediator=me, decided_at=stamp(self.clock.now()), recipient=reader,
                delivery=delivery, reason=reason)
            meta = {"decision": doc, "signature": envelope.sign(Domain.DECISION, doc, identity.signing_key)}
            path = f"/v1/items/{manifest['item_id']}/decision"
            if sealed is not None and sealed.size > RESUMABLE_ABOVE:
                meta["upload_id"] = await self.upload_resumable(sealed.path, sealed.size, progress)
                return await self._upload(path, meta, None, None)
            return await self._upload(path, meta, sealed, progress)
        finally:
            if sealed is not None:
                sealed.path.unlink(missing_ok=True)

    # -- receiving ------------------------------------------------------------------------------

    async def fetch(self, item_id: str, dst: BinaryIO, progress: Progress | None = None,
                    acknowledge: bool = True) -> dict[str, Any]:
        """Fetch a released item: verify the mediator's signed release, the hash, then decrypt."""
        me, identity = self._me()
        view = await self.call("GET", f"/v1/items/{item_id}/delivery")
        decision = view["decision"]
        key, delivery = await self._verified_decision(decision, view["decision_signature"], item_id, "release", me)
        await self._fetch_plaintext(f"/v1/items/{item_id}/delivery/content", key, delivery["size"], delivery["hash"],
                                    dst, progress)
        if acknowledge:
            receipt = envelope.receipt(item_id=item_id, decision_hash=envelope.digest(decision), recipient=me,
                                       opened_at=stamp(self.clock.now()))
            view = await self.call("POST", f"/v1/items/{item_id}/receipt", json_body={
                "receipt": receipt, "signature": envelope.sign(Domain.RECEIPT, receipt, identity.signing_key)})
        return {**view, "content_type": delivery["content_type"]}

    async def read_note(self, item_id: str, dst: BinaryIO) -> dict[str, Any]:
        """The sender reads the note that came with a returned item."""
        me, _ = self._me()
        view = await self.call("GET", f"/v1/items/{item_id}/note")
        key, delivery = await self._verified_decision(view["decision"], view["decision_signature"], item_id,
                                                      "return", me)
        await self._fetch_plaintext(f"/v1/items/{item_id}/note/content", key, delivery["size"], delivery["hash"],
                                    dst, None)
        return view  # type: ignore[no-any-return]

    async def _verified_decision(self, decision: dict[str, Any], signature: str, item_id: str, kind: str,
                                 me: str) -> tuple[bytes, dict[str, Any]]:
        _, identity = self._me()
        mediator = await self.person(str(decision.get("mediator", "")))
        try:
            if mediator.role != "mediator":
                raise VerificationError("signed by someone who is not a mediator")
            envelope.verify(Domain.DECISION, decision, signature, mediator.keys.sign_pk)
            if (decision["item_id"] != item_id or decision["decision"] != kind or decision["recipient"] != me
                    or not decision.get("delivery") or me not in decision["delivery"]["keys"]):
                raise VerificationError("the release is not for this item or this reader")
            return envelope.open_key(decision["delivery"]["keys"][me], identity), decision["delivery"]
        except envelope.EnvelopeError:
            raise VerificationError("the release did not verify") from None

    async def _fetch_plaintext(self, path: str, key: bytes, size: int, expect_hash: str, dst: BinaryIO,
                               progress: Progress | None) -> None:
        """Stream ciphertext through the decryptor into ``dst``; verify size and hash at the end.

        Each 64 KiB chunk is authenticated before its plaintext is written; the whole-blob hash
        (which the signature covers) is checked at the end, and the caller must discard ``dst``
        if this raises.
        """
        decryptor = envelope.StreamDecryptor(key)
        hasher = envelope.new_hasher()
        received = 0
        async with self._download(path) as response:
            async for chunk in response.content.iter_chunked(CHUNK):
                received += len(chunk)
                if received > size:
                    raise VerificationError("more bytes than the signed size")
                hasher.update(chunk)
                try:
                    dst.write(decryptor.feed(chunk))
                except envelope.EnvelopeError:
                    raise VerificationError("the content did not decrypt") from None
                if progress:
                    progress(received, size)
        try:
            decryptor.finish()
        except envelope.EnvelopeError:
            raise VerificationError("the content is incomplete") from None
        if received != size or hasher.hexdigest() != expect_hash:
            raise VerificationError("the content does not match its signed hash")


def _require_tls(url: str) -> None:
    """Tokens, key bundles and sealed keys travel in requests: plain HTTP only on loopback."""
    parts = urlsplit(url)
    loopback = parts.hostname in ("localhost", "::1") or (parts.hostname or "").startswith("127.")
    if parts.scheme == "https" or (parts.scheme == "http" and loopback):
        return
    if parts.scheme == "http" and os.environ.get("RELAY_ALLOW_PLAIN_HTTP") == "1":
        return
    raise InsecureTransport(f"refusing {parts.scheme}:// to {parts.hostname}: use https:// (plain http only on loopback)")


def _write_durably(path: Path, data: bytes) -> None:
    """Write, fsync, rename: a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


# Ciphertext goes to the sealed file in batches of this size, one pwritev each: a system call
# per 64 KiB chunk took time from the encrypting thread, the slower of the two.
_WRITE_BATCH = 256 * 1024


def _seal_pipeline(key: bytes, src: BinaryIO, fd: int, *, durable: bool, stop: threading.Event) -> tuple[int, str]:
    """Encrypt ``src`` into ``fd`` (open for reading and writing) on this thread while a
    :class:`~storage.hashing.HashBehind` thread hashes what is written; return size and hash.
    Closes ``fd`` on every path. ``stop`` set (the caller was cancelled) ends it at the next chunk.

    A durable file (an outbox entry must match its hash after a power cut) is fsynced, and its
    bytes are written out as soon as they are hashed; a temp file is left in the page cache,
    since it is read again at once for the upload."""
    try:
        hasher = envelope.new_hasher()
        behind = HashBehind(fd, 0, hasher.update, evict=durable)
        size, batch, pending = 0, [], 0
        try:
            for chunk in envelope.encrypt_stream(key, src):
                if stop.is_set():
                    raise asyncio.CancelledError()
                batch.append(chunk)
                pending += len(chunk)
                if pending >= _WRITE_BATCH:
                    size += write_all(fd, batch, size)
                    batch, pending = [], 0
                    behind.wrote(size)
            if batch:
                size += write_all(fd, batch, size)
            behind.close(size)
            behind.join()
            if durable:
                os.fsync(fd)
        except BaseException:
            behind.abandon()
            raise
    finally:
        os.close(fd)
    return size, hasher.hexdigest()


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


async def _file_chunks(handle: IO[bytes], total: int, progress: Progress | None) -> AsyncIterator[bytes]:
    done = 0
    while chunk := handle.read(CHUNK):
        done += len(chunk)
        if progress:
            progress(done, total)
        yield chunk


async def _decode(response: aiohttp.ClientResponse) -> Any:
    if response.status == 204:
        return None
    text = await response.text()
    if response.status >= 400:
        try:
            problem = json.loads(text)
        except ValueError:
            problem = {"title": f"HTTP {response.status}"}
        raise ProblemError(response.status, problem)
    return json.loads(text) if text else None


async def bootstrap(url: str, code: str, identity: Identity, *, label: str, device_label: str,
                    key_bundle: bytes | None = None, http: aiohttp.ClientSession | None = None) -> dict[str, Any]:
    """Enroll the first coordinator with the code the relay printed at first start."""
    person_id = ids.new("person")
    public = identity.public
    doc = envelope.enrollment(person_id=person_id, role="coordinator", side=None,
                              sign_pk=envelope.b64e(public.sign_pk), box_pk=envelope.b64e(public.box_pk),
                              enrolled_by=person_id, enrolled_at=stamp(SystemClock().now()))
    body: dict[str, Any] = {"code": code, "enrollment": doc, "label": label, "device_label": device_label,
                            "enrollment_sig": envelope.sign(Domain.ENROLLMENT, doc, identity.signing_key)}
    if key_bundle is not None:
        body["key_bundle"] = envelope.b64e(key_bundle)
    async with Client(url, http=http) as client:
        result: dict[str, Any] = await client.call("POST", "/v1/bootstrap", json_body=body)
    return {**result, "trust_root": envelope.b64e(public.sign_pk)}
