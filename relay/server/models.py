"""Every body that crosses the HTTP boundary, as a pydantic model. Unknown fields are refused, and
so is a value of the wrong JSON type (strict mode: nothing is coerced)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from relay import ids
from relay.envelope import documents
from relay.wire import MAX_POSTER_BYTES

_B64 = r"^[A-Za-z0-9+/]+={0,2}$"
Label = Field(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]+$")

# The envelope spec's *time* (docs/envelope-v2.md section 8): RFC 3339 UTC ending in "Z",
# optionally 1 to 6 fractional-second digits, naming a real date and time. One grammar for every
# moment the relay takes, signed or not. ASCII digits only: a regex's \d also takes "٢".
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")


def _real_moment(value: str) -> str:
    if not _TIME.fullmatch(value):
        raise ValueError("a UTC time like 2026-11-21T19:27:28Z (optionally with up to 6 fractional digits)")
    try:
        datetime.fromisoformat(value)  # refuses 2026-02-30, 24:00:00, 23:59:60
    except ValueError:
        raise ValueError("not a real date and time") from None
    return value


Moment = Annotated[str, Field(max_length=32), AfterValidator(_real_moment)]


class Strict(BaseModel):
    # strict: a JSON value of the wrong type is refused, never coerced (no 0 for false, no "5" for 5);
    # the schema fuzz found `program_exception: 0` amending a no-contact condition before this.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Signed:
    """A signed document's field: validated as a plain JSON object (the signature covers exactly
    what was sent, so the service checks it and then the document model), but described in the
    JSON Schema as that document model (``/openapi.json`` links it to the model's component)."""

    def __init__(self, document: str) -> None:
        self.document = document

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "object", "x-relay-document": self.document}


ItemManifestDoc = Annotated[dict[str, Any], Signed("ItemManifest")]
DecisionDoc = Annotated[dict[str, Any], Signed("DecisionManifest")]


# -- sessions -------------------------------------------------------------------------------


class ChallengeRequest(Strict):
    person_id: str = Field(pattern=ids.pattern("person"))


class SessionRequest(Strict):
    challenge_id: str = Field(pattern=ids.pattern("challenge"))
    signature: str = Field(max_length=200, pattern=_B64)


# -- coordinator ----------------------------------------------------------------------------


class NewInstitution(Strict):
    name: str = Label


class Enrollment(Strict):
    """A person's public keys and role, signed by the enrolling coordinator (see docs)."""

    enrollment: Annotated[dict[str, Any], Signed("EnrollmentDoc")]
    enrollment_sig: str = Field(max_length=200, pattern=_B64)


class NewPerson(Enrollment):
    label: str = Label
    institution_id: str | None = Field(default=None, pattern=ids.pattern("institution"))
    relation: Literal["victim", "victim_representative", "victim_family", "offender_family", "offender"] | None = None
    key_bundle: str | None = Field(default=None, max_length=4096, pattern=_B64)


class Bootstrap(Enrollment):
    code: str = Field(min_length=10, max_length=256)
    label: str = Label
    device_label: str = Label
    key_bundle: str | None = Field(default=None, max_length=4096, pattern=_B64)


class NewDevice(Strict):
    kind: Literal["participant_device", "mediator_desk", "terminal", "coordinator_console"]
    label: str = Label
    person_id: str | None = Field(default=None, pattern=ids.pattern("person"))
    institution_id: str | None = Field(default=None, pattern=ids.pattern("institution"))


class NewCase(Strict):
    # Any string is accepted here so that "offender" gets its own clear refusal, not a type error.
    referral_source: str = Field(min_length=1, max_length=40)
    institution_id: str = Field(pattern=ids.pattern("institution"))
    label: str | None = Field(default=None, min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]+$")


class CaseMember(Strict):
    person_id: str = Field(pattern=ids.pattern("person"))


class CaseStatus(Strict):
    status: Literal["open", "paused", "closed"]


class Consent(Strict):
    consent: Literal["given", "withdrawn"]


# -- items ----------------------------------------------------------------------------------


class LegalHold(Strict):
    hold: StrictBool  # exactly true or false: a stray 0 or "no" must not lift a hold


class RetentionOverride(Strict):
    """A per-case length for one rule of the schedule; ``days: null`` goes back to the schedule's."""

    rule: Literal["review_wait", "released_undelivered", "after_delivery", "returned_or_withheld", "closed_case"]
    days: StrictInt | None = Field(ge=1, le=3650)  # never `true` (1) or "5"


class Submission(Strict):
    """Upload meta: the signed manifest and, for a mediator's own message, its signed release."""

    manifest: ItemManifestDoc
    signature: str = Field(max_length=200, pattern=_B64)
    decision: DecisionDoc | None = None
    decision_signature: str | None = Field(default=None, max_length=200, pattern=_B64)
    upload_id: str | None = Field(default=None, pattern=ids.pattern("upload"))  # content sent resumably
    poster: str | None = Field(default=None, max_length=MAX_POSTER_BYTES * 4 // 3 + 4, pattern=_B64)


class DecisionRequest(Strict):
    decision: DecisionDoc
    signature: str = Field(max_length=200, pattern=_B64)
    upload_id: str | None = Field(default=None, pattern=ids.pattern("upload"))  # the rendition, sent resumably


class ReceiptRequest(Strict):
    receipt: Annotated[dict[str, Any], Signed("Receipt")]
    signature: str = Field(max_length=200, pattern=_B64)


# -- signed documents: the envelope's models (relay.envelope.documents, the one declaration of
# their fields), plus what this relay requires of ids and sizes -------------------------------


def _ids(**named: tuple[str, object]) -> None:
    """Raise (a field error of the document) unless each value is an id of its kind."""
    for field, (kind, value) in named.items():
        if not ids.valid(kind, value):
            raise ValueError(f"{field} is not a {kind} id this relay issued")


_MAX_READERS = 32  # sealed keys per item: the case's mediators, the sender, maybe the recipient
_MAX_CONTENT_TYPE = 100


def _sizes(content_type: str, size: int, keys: dict[str, str]) -> None:
    if len(content_type) > _MAX_CONTENT_TYPE or size <= 0 or len(keys) > _MAX_READERS:
        raise ValueError("content_type up to 100 characters, a size above 0, at most 32 readers")


class ItemManifest(documents.ItemManifest):
    @model_validator(mode="after")
    def _relay(self) -> Self:
        _ids(item_id=("item", self.item_id), case_id=("case", self.case_id), sender=("person", self.sender))
        if self.recipient != "mediators":
            _ids(recipient=("person", self.recipient))
        _sizes(self.content_type, self.size, self.keys)
        if self.poster is not None and not 1 <= self.poster.size <= MAX_POSTER_BYTES:
            raise ValueError(f"a poster is at most {MAX_POSTER_BYTES} bytes")
        return self


class DecisionManifest(documents.DecisionManifest):
    @model_validator(mode="after")
    def _relay(self) -> Self:
        _ids(item_id=("item", self.item_id), case_id=("case", self.case_id), sender_id=("person", self.sender.id),
             mediator=("person", self.mediator), recipient=("person", self.recipient))
        if self.reason is not None and not re.fullmatch(r"[a-z0-9-]{1,40}", self.reason):
            raise ValueError("a reason is a code of up to 40 lowercase letters, digits and hyphens")
        if self.delivery is not None:
            _sizes(self.delivery.content_type, self.delivery.size, self.delivery.keys)
        return self


class Receipt(documents.Receipt):
    @model_validator(mode="after")
    def _relay(self) -> Self:
        _ids(item_id=("item", self.item_id), recipient=("person", self.recipient))
        return self


class EnrollmentDoc(documents.Enrollment):
    """An enrollment (envelope spec): a person's role and public keys, signed by a coordinator."""

    role: Literal["coordinator", "mediator", "participant"]  # narrower than the format's text
    side: Literal["victim", "offender"] | None

    @model_validator(mode="after")
    def _relay(self) -> Self:
        _ids(person_id=("person", self.person_id), enrolled_by=("person", self.enrolled_by))
        return self


# -- conditions and approvals (the national unit) --------------------------------------------

class NewCondition(Strict):
    kind: Literal["court_order", "parole_condition", "institutional"]
    reference: str = Field(min_length=1, max_length=120, pattern=r"^[^\x00-\x1f\x7f]+$")
    restricted_id: str = Field(pattern=ids.pattern("person"))
    protected_people: list[str] = Field(default_factory=list, max_length=50)
    protected_case_id: str | None = Field(default=None, pattern=ids.pattern("case"))
    protected_side: Literal["victim", "offender"] | None = None
    direction: Literal["from_restricted", "to_restricted", "both"]
    effective_from: Moment
    effective_until: Moment | None = None
    program_exception: bool


class ConditionAmendment(Strict):
    reference: str | None = Field(default=None, min_length=1, max_length=120, pattern=r"^[^\x00-\x1f\x7f]+$")
    protected_people: list[str] | None = Field(default=None, max_length=50)
    direction: Literal["from_restricted", "to_restricted", "both"] | None = None
    effective_from: Moment | None = None
    effective_until: Moment | None = None
    program_exception: bool | None = None


class NewApproval(Strict):
    case_id: str = Field(pattern=ids.pattern("case"))
    condition_id: str = Field(pattern=ids.pattern("condition"))
    directions: list[Literal["from_restricted", "to_restricted"]] = Field(min_length=1, max_length=2)
    kinds: list[Literal["letter", "video"]] = Field(min_length=1, max_length=2)
    valid_until: Moment


# -- limits and the mediator desk (issues 10 and 11) -----------------------------------------


class CasePause(Strict):
    """A case's mediator pauses (``paused: true``) or resumes it, with a reason code from the
    ``pause_reasons`` or ``resume_reasons`` that ``GET /v1/limits`` announces (another is refused
    with the list)."""

    paused: StrictBool
    reason: str = Field(min_length=1, max_length=40)


class KioskCode(Strict):
    """The short code a participant types at a kiosk (``XXXX-XXXX``; case, spaces and dashes ignored)."""

    code: str = Field(min_length=1, max_length=32)


class TimelinePage(BaseModel):
    """``GET /v1/cases/{case_id}/timeline?after=&limit=``: after a sequence number, up to ``limit``
    events. Plain ASCII digits (a query is text; nothing like "1_000" or "٣" is taken)."""

    model_config = ConfigDict(frozen=True)  # other query parameters are ignored, as before

    after: str = Field(default="0", pattern=r"^[0-9]{1,11}$", description="a sequence number")
    limit: str = Field(default="200", pattern=r"^(1000|[1-9][0-9]{0,2})$", description="1 to 1000")
