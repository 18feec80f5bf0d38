"""The mediator's desk: open an item (the sender's signature verified), and decide: release
(as written, a redacted letter, or a sanitized video), return with a note, or withhold."""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import media
from relay import envelope
from relay.client.sdk.base import CHUNK, Progress, TranscodeProgress, VerificationError, _Discard
from relay.client.sdk.transfer import Transfer
from relay.clock import stamp
from relay.envelope import Domain


class Review(Transfer):
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
                      media_timeout_s: float = 3600, seal_progress: Progress | None = None,
                      already_sanitized: bool = False) -> dict[str, Any]:
        """Release to the recipient: the item as written, or ``rendition`` (an edited version).

        Either way the delivery is re-encrypted under a fresh key sealed to the recipient and
        this mediator, and the release binds the original manifest's hash. A video is always
        sanitized here first (``media.sanitize``: re-encoded to the delivery profile, every tag,
        chapter and extra stream stripped); the recipient only ever receives that rendition.
        Plaintext exists only in a private scratch directory that is removed on every path.
        ``seal_progress(sealed bytes, sealed size)`` reports the rendition's sealing.
        ``already_sanitized``: ``rendition`` is what ``media.sanitize`` made of this video at this
        desk (the desk sanitizes first so the mediator watches exactly what is delivered).
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
            if manifest["kind"] == "video" and already_sanitized and rendition is not None:
                content_type = "video/mp4"
            elif manifest["kind"] == "video":
                sanitized = Path(scratch) / "sanitized.mp4"
                await media.sanitize(source_path, sanitized, progress=transcode_progress, timeout_s=media_timeout_s)
                source_path, content_type = sanitized, "video/mp4"
            with open(source_path, "rb") as source:
                return await self._decide(item, "release", manifest["recipient"], source,
                                          content_type or manifest["content_type"], None, progress, seal_progress)

    async def return_to_sender(self, item_id: str, note: str) -> dict[str, Any]:
        item = await self.open_item(item_id, _Discard())
        return await self._decide(item, "return", item["manifest"]["sender"], io.BytesIO(note.encode("utf-8")),
                                  "text/plain; charset=utf-8", None, None)

    async def withhold(self, item_id: str, reason: str) -> dict[str, Any]:
        item = await self.call("GET", f"/v1/items/{item_id}")
        return await self._decide(item, "withhold", item["manifest"]["recipient"], None, None, reason, None)

    async def _decide(self, item: dict[str, Any], decision: str, reader: str | None, src: BinaryIO | None,
                      content_type: str | None, reason: str | None, progress: Progress | None,
                      seal_progress: Progress | None = None) -> dict[str, Any]:
        me, identity = self._me()
        manifest = item["manifest"]
        # The recipient never sees the manifest: the decision names its sender, by id and by the
        # fingerprint of the keys the sender's signature was verified with (the enrollment chain).
        sender = await self.person(manifest["sender"])
        sealed = None
        delivery = None
        if src is not None and reader is not None:
            key = envelope.new_content_key()
            sealed = await self._seal_file(key, src, progress=seal_progress)
            holders = {reader: (await self.person(reader)).keys.box_pk, me: identity.public.box_pk}
            delivery = {"content_type": content_type, "size": sealed.size, "hash": sealed.hash,
                        "keys": {pid: envelope.seal_key(key, pk) for pid, pk in sorted(holders.items())}}
        try:
            doc = envelope.decision_manifest(
                item_id=manifest["item_id"], case_id=manifest["case_id"], manifest_hash=envelope.digest(manifest),
                sender={"id": sender.id, "fingerprint": sender.keys.fingerprint()}, decision=decision, mediator=me, decided_at=stamp(self.clock.now()), recipient=reader,
                delivery=delivery, reason=reason)
            meta = {"decision": doc, "signature": envelope.sign(Domain.DECISION, doc, identity.signing_key)}
            return await self._submit_sealed(f"/v1/items/{manifest['item_id']}/decision", meta, sealed, progress)
        finally:
            if sealed is not None:
                sealed.path.unlink(missing_ok=True)
