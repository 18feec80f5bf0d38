"""The coordinator's console: enrolling people (a signed enrollment each) and, once, the first
coordinator with the code the relay printed at its first start."""

from __future__ import annotations

from typing import Any

from policies.screening import side_of
from relay import envelope, ids
from relay.client.sdk.base import BaseClient
from relay.clock import stamp
from relay.envelope import Domain, PublicIdentity


class Coordinator(BaseClient):
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
