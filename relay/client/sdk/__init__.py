"""The client SDK: everything a coordinator console, participant device, mediator desk or
institutional terminal does, over HTTP, with the cryptography done here, on the endpoint.

Plaintext exists only in this process: letters are sealed before they leave and opened after
they arrive, streamed through ``relay.envelope`` in 64 KiB chunks so memory stays flat for any
size. Ciphertext waiting to be uploaded goes to a private temp file (never plaintext). Every
key the client seals to, and every signature it trusts, is checked against the enrollment
chain back to the trust root this device was provisioned with, and the roles it states are
enforced here too (only mediators get a participant's content key).

The SDK is split by what each role does (SecureDrop's client keeps its SDK apart the same way):
``base`` (transport, sessions, the key directory), ``transfer`` (sealing, uploads, downloads),
``sending``, ``review`` (the mediator), ``receiving`` (the recipient) and ``coordinator``. One
:class:`Client` has them all; the relay decides what each person may do.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from relay import envelope, ids
from relay.client.sdk.base import (
    CHUNK,
    InsecureTransport,
    InvalidRecipient,
    OverLimit,
    Person,
    ProblemError,
    Progress,
    TranscodeProgress,
    VerificationError,
)
from relay.client.sdk.coordinator import Coordinator
from relay.client.sdk.receiving import Receiving
from relay.client.sdk.review import Review
from relay.client.sdk.sending import Sending
from relay.client.sdk.transfer import Sealed
from relay.clock import SystemClock, stamp
from relay.envelope import Domain, Identity

__all__ = ["CHUNK", "Client", "InsecureTransport", "InvalidRecipient", "OverLimit", "Person", "ProblemError",
           "Progress", "Sealed", "TranscodeProgress", "VerificationError", "bootstrap"]


class Client(Coordinator, Sending, Review, Receiving):
    """Everything a coordinator console, participant device, mediator desk or terminal does."""


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

