"""The recipient's side: fetch a released item (the mediator's signed release verified, then
the hash, then decrypted), learn who wrote it from that release, send the receipt; and a
returned item's note for its sender."""

from __future__ import annotations

from typing import Any, BinaryIO

from relay import envelope
from relay.client.sdk.base import Progress, VerificationError
from relay.client.sdk.transfer import Transfer
from relay.clock import stamp
from relay.envelope import Domain


class Receiving(Transfer):
    async def fetch(self, item_id: str, dst: BinaryIO, progress: Progress | None = None,
                    acknowledge: bool = True) -> dict[str, Any]:
        """Fetch a released item: verify the mediator's signed release, the hash, then decrypt.

        The answer's ``sender`` (``id``, ``fingerprint``, ``role``, ``side``) says who wrote it, as
        the mediator's signature vouches and the enrollment chain confirms: show that, never the
        relay's own ``sender_id``."""
        me, identity = self._me()
        view = await self.call("GET", f"/v1/items/{item_id}/delivery")
        decision = view["decision"]
        key, delivery = await self._verified_decision(decision, view["decision_signature"], item_id, "release", me)
        sender = await self._signed_sender(decision)  # before any plaintext is written
        await self._fetch_plaintext(f"/v1/items/{item_id}/delivery/content", key, delivery["size"], delivery["hash"],
                                    dst, progress)
        if acknowledge:
            receipt = envelope.receipt(item_id=item_id, decision_hash=envelope.digest(decision), recipient=me,
                                       opened_at=stamp(self.clock.now()))
            view = await self.call("POST", f"/v1/items/{item_id}/receipt", json_body={
                "receipt": receipt, "signature": envelope.sign(Domain.RECEIPT, receipt, identity.signing_key)})
        return {**view, "content_type": delivery["content_type"], "sender": sender}

    async def read_note(self, item_id: str, dst: BinaryIO) -> dict[str, Any]:
        """The sender reads the note that came with a returned item."""
        me, _ = self._me()
        view = await self.call("GET", f"/v1/items/{item_id}/note")
        key, delivery = await self._verified_decision(view["decision"], view["decision_signature"], item_id,
                                                      "return", me)
        sender = await self._signed_sender(view["decision"])
        await self._fetch_plaintext(f"/v1/items/{item_id}/note/content", key, delivery["size"], delivery["hash"],
                                    dst, None)
        return {**view, "sender": sender}

    async def _signed_sender(self, decision: dict[str, Any]) -> dict[str, Any]:
        """Who wrote the item, from a verified decision: the person it names, whose enrolled keys
        (checked along the enrollment chain) must have the fingerprint it names."""
        named = decision["sender"]
        person = await self.person(named["id"])
        if person.keys.fingerprint() != named["fingerprint"]:
            raise VerificationError("the release names a sender whose keys differ from their enrollment")
        return {"id": person.id, "fingerprint": named["fingerprint"], "role": person.role, "side": person.side}

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
