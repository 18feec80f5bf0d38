"""Every body that crosses the HTTP boundary, as a pydantic model. Unknown fields are refused."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictInt

from relay import ids
from relay.wire import MAX_POSTER_BYTES

_B64 = r"^[A-Za-z0-9+/]+={0,2}$"
_HEX64 = r"^[0-9a-f]{64}$"
Label = Field(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]+$")

# The envelope spec's *time* (docs/envelope-v1.md section 8): RFC 3339 UTC ending in "Z",
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
    model_config = ConfigDict(extra="forbid", frozen=True)


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

    enrollment: dict[str, Any]
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

    manifest: dict[str, Any]
    signature: str = Field(max_length=200, pattern=_B64)
    decision: dict[str, Any] | None = None
    decision_signature: str | None = Field(default=None, max_length=200, pattern=_B64)
    upload_id: str | None = Field(default=None, pattern=ids.pattern("upload"))  # content sent resumably
    poster: str | None = Field(default=None, max_length=MAX_POSTER_BYTES * 4 // 3 + 4, pattern=_B64)


class DecisionRequest(Strict):
    decision: dict[str, Any]
    signature: str = Field(max_length=200, pattern=_B64)
    upload_id: str | None = Field(default=None, pattern=ids.pattern("upload"))  # the rendition, sent resumably


class ReceiptRequest(Strict):
    receipt: dict[str, Any]
    signature: str = Field(max_length=200, pattern=_B64)


# -- signed documents, checked field by field after the signature --------------------------


class PosterRef(Strict):
    """A video's still for the review queue: its ciphertext's size and hash, signed with the item."""

    content_type: Literal["image/jpeg"]
    size: int = Field(ge=1, le=MAX_POSTER_BYTES)
    hash: str = Field(pattern=_HEX64)


class ItemManifest(Strict):
    v: Literal[1]
    type: Literal["item"]
    item_id: str = Field(pattern=ids.pattern("item"))
    case_id: str = Field(pattern=ids.pattern("case"))
    kind: Literal["letter", "video"]
    sender: str = Field(pattern=ids.pattern("person"))
    recipient: str = Field(pattern=ids.pattern("person") + "|^mediators$")
    created_at: Moment
    content_type: str = Field(min_length=1, max_length=100)
    size: int = Field(gt=0)
    hash: str = Field(pattern=_HEX64)
    keys: dict[str, str] = Field(min_length=1, max_length=32)
    poster: PosterRef | None = None


class Delivery(Strict):
    content_type: str = Field(min_length=1, max_length=100)
    size: int = Field(gt=0)
    hash: str = Field(pattern=_HEX64)
    keys: dict[str, str] = Field(min_length=1, max_length=32)


class DecisionManifest(Strict):
    v: Literal[1]
    type: Literal["decision"]
    item_id: str = Field(pattern=ids.pattern("item"))
    case_id: str = Field(pattern=ids.pattern("case"))
    manifest_hash: str = Field(pattern=_HEX64)
    decision: Literal["release", "return", "withhold"]
    mediator: str = Field(pattern=ids.pattern("person"))
    decided_at: Moment
    recipient: str = Field(pattern=ids.pattern("person"))
    delivery: Delivery | None
    reason: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,40}$")


class Receipt(Strict):
    v: Literal[1]
    type: Literal["receipt"]
    item_id: str = Field(pattern=ids.pattern("item"))
    decision_hash: str = Field(pattern=_HEX64)
    recipient: str = Field(pattern=ids.pattern("person"))
    opened_at: Moment


class EnrollmentDoc(Strict):
    v: Literal[1]
    type: Literal["enrollment"]
    person_id: str = Field(pattern=ids.pattern("person"))
    role: Literal["coordinator", "mediator", "participant"]
    side: Literal["victim", "offender"] | None
    sign_pk: str = Field(pattern=_B64, max_length=64)
    box_pk: str = Field(pattern=_B64, max_length=64)
    enrolled_by: str = Field(pattern=ids.pattern("person"))
    enrolled_at: Moment


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
    """A case's mediator pauses (``paused: true``) or resumes it, with a reason code from
    ``relay.wire.PAUSE_REASONS`` or ``RESUME_REASONS`` (checked by the service, which names the list)."""

    paused: StrictBool
    reason: str = Field(min_length=1, max_length=40)


class KioskCode(Strict):
    """The short code a participant types at a kiosk (``XXXX-XXXX``; case, spaces and dashes ignored)."""

    code: str = Field(min_length=1, max_length=32)
