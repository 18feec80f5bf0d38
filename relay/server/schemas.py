"""Every JSON body the relay answers with, as a pydantic model: the response half of the HTTP
contract (the request half is ``relay.server.models``).

Handlers return plain data from the services; ``relay.server.api.operation`` validates it
against the model its route declares, strictly (no coercion) and with unknown members refused,
before a byte is sent. So ``/openapi.json``, which is generated from these same classes, cannot
describe a body other than the one sent: a service that adds, drops or retypes a member fails
the tests (and, in production, answers 500 rather than send an undocumented body).

The class names become the component names of ``/openapi.json``: they are part of the contract.
Times are the relay's RFC 3339 UTC strings (``2026-11-21T19:27:28.123456Z``); ids are the
relay's prefixed ids (``per_…``, ``cas_…``, ``itm_…``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from relay.server.models import DecisionDoc, ItemManifestDoc

Role = Literal["coordinator", "mediator", "participant"]
Relation = Literal["victim", "victim_representative", "victim_family", "offender_family", "offender"]
DeviceKind = Literal["participant_device", "mediator_desk", "terminal", "coordinator_console"]
Status = Literal["active", "revoked"]
CaseState = Literal["open", "paused", "closed"]
ItemKind = Literal["letter", "video"]
ItemState = Literal["uploading", "pending_review", "released", "delivered", "returned", "withheld", "held",
                    "expired", "purged"]
DecisionKind = Literal["release", "return", "withhold"]
Direction = Literal["from_restricted", "to_restricted", "both"]
RetentionRule = Literal["review_wait", "released_undelivered", "after_delivery", "returned_or_withheld",
                        "closed_case"]
Time = str  # RFC 3339 UTC, ending in Z


class Reply(BaseModel):
    """Base of every response model: a member the model does not name is an error, not a leak."""

    model_config = ConfigDict(extra="forbid")


class Words(Reply):
    """One sentence in every language the relay speaks, for clients that choose one themselves."""

    en: str
    fr: str


# -- health -----------------------------------------------------------------------------------


class Health(Reply):
    status: Literal["ok"]


class ReadinessChecks(Reply):
    database: bool
    schema_: bool = Field(alias="schema")
    blobs: bool
    disk: bool
    purge: bool


class Readiness(Reply):
    status: Literal["ready"]
    checks: ReadinessChecks


class BootstrapResult(Reply):
    """The first coordinator and their console's device token (shown this once)."""

    person_id: str
    device_id: str
    device_token: str


# -- sessions and the directory -----------------------------------------------------------------


class Challenge(Reply):
    challenge_id: str
    challenge: str = Field(description="base64 nonce the person signs in the login statement")
    expires_at: Time


class Session(Reply):
    session_token: str = Field(description="sent back as Authorization: Bearer <session_token>")
    expires_at: Time
    idle_seconds: int
    person_id: str
    role: Role


class MyPerson(Reply):
    id: str
    role: Role
    relation: Relation | None
    label: str
    institution_id: str | None


class MyDevice(Reply):
    id: str
    kind: DeviceKind
    institution_id: str | None
    label: str


class Person(Reply):
    """A person as the coordinator sees them: role, public keys, status. Never a private key."""

    id: str
    role: Role
    relation: Relation | None
    label: str
    institution_id: str | None
    sign_pk: str
    box_pk: str
    status: Status
    created_at: Time


class EnrolledPerson(Person):
    kiosk_code: str | None = Field(default=None, description="a kiosk user's code, shown this once")


class DirectoryEntry(Person):
    """A person's signed enrollment: clients check the chain back to their trust root."""

    enrollment: str = Field(description="base64 of the canonical JSON the enrolling coordinator signed")
    enrollment_sig: str


class KeyBundle(Reply):
    person_id: str
    key_bundle: str = Field(description="base64 passphrase-sealed private key bundle")


class KioskIdentity(Reply):
    person_id: str


class IssuedKioskCode(Reply):
    person_id: str
    kiosk_code: str


class BundleUnlock(Reply):
    person_id: str
    fetches_cleared: int


# -- institutions and devices -------------------------------------------------------------------


class Institution(Reply):
    id: str
    name: str
    created_at: Time


class Device(Reply):
    id: str
    kind: DeviceKind
    person_id: str | None
    institution_id: str | None
    label: str
    status: Status
    created_at: Time
    revoked_at: Time | None = None


class RegisteredDevice(Device):
    device_token: str = Field(description="shown this once; sent as X-Relay-Device")


# -- cases --------------------------------------------------------------------------------------


class CaseSummary(Reply):
    """A case in a participant's or mediator's list."""

    id: str
    label: str | None
    status: CaseState
    institution_id: str
    created_at: Time


class CaseRecord(Reply):
    """A case's own record, as the coordinator lists it."""

    id: str
    institution_id: str
    referral_source: Literal["victim", "institutional", "community"]
    label: str | None
    status: CaseState
    created_at: Time
    updated_at: Time
    closed_at: Time | None = None
    last_activity_at: Time | None = None
    legal_hold_since: Time | None = None
    legal_hold_by: str | None = None
    paused_by: str | None = None
    paused_at: Time | None = None
    pause_reason: str | None = None


class CaseParticipant(Reply):
    id: str
    label: str
    relation: Relation
    status: Status
    institution_id: str | None
    consent: Literal["given", "withdrawn"]
    consent_changed_at: Time


class CaseMediator(Reply):
    id: str
    label: str
    status: Status


class Condition(Reply):
    """A no-contact condition in the national unit's register."""

    id: str
    kind: Literal["court_order", "parole_condition", "institutional"]
    reference: str
    restricted_id: str
    protected_people: list[str]
    protected_case_id: str | None
    protected_side: Literal["victim", "offender"] | None
    direction: Direction
    effective_from: Time
    effective_until: Time | None
    program_exception: bool
    version: int
    created_at: Time
    updated_at: Time
    lifted_at: Time | None


class Approval(Reply):
    """The national unit's approval of a facilitated exchange under a condition."""

    id: str
    case_id: str
    condition_id: str
    directions: list[Literal["from_restricted", "to_restricted"]]
    kinds: list[ItemKind]
    valid_until: Time
    approved_by: str
    approved_at: Time
    revoked_at: Time | None = None
    revoked_by: str | None = None


class CaseDetail(CaseRecord):
    """A case as staff see it: members, the conditions and approvals screening decides on."""

    participants: list[CaseParticipant]
    mediators: list[CaseMediator]
    conditions: list[Condition]
    approvals: list[Approval]
    retention_overrides: dict[RetentionRule, int]


class ParticipantCaseMember(Reply):
    id: str
    label: str
    relation: Relation


class ParticipantMediator(Reply):
    id: str
    label: str


class ParticipantCase(Reply):
    """A case as a participant sees it: whom they can write to, and their own consent only."""

    id: str
    status: CaseState
    participants: list[ParticipantCaseMember]
    mediators: list[ParticipantMediator]
    my_consent: Literal["given", "withdrawn"]


class ConsentChange(CaseDetail):
    items_held: int
    items_returned_to_review: int


class StatusChange(CaseDetail):
    items_released_from_hold: int


class PauseChange(Reply):
    case_id: str
    status: CaseState
    paused: bool
    pause_reason: str | None
    paused_at: Time | None
    changed: bool
    items_released_from_hold: int


class Me(Reply):
    person: MyPerson
    device: MyDevice
    cases: list[CaseRecord] | list[CaseSummary] = Field(
        description="every case for the coordinator (their records); the caller's own cases for anyone else")


class PersonRef(Reply):
    id: str | None
    label: str | None


class TimelineEvent(Reply):
    seq: int
    at: Time
    event: str
    action: str
    by: PersonRef | None
    item_id: str | None
    item_kind: ItemKind | None
    sender: PersonRef | None
    recipient: PersonRef | None
    person: PersonRef | None
    code: str | None
    reason: Words | None


class Timeline(Reply):
    """What happened in a case (never what was said), oldest first, a page at a time."""

    case_id: str
    case_label: str | None
    events: list[TimelineEvent]
    next_after: int | None = Field(description="pass as ?after= for the next page; null on the last")


# -- retention ----------------------------------------------------------------------------------


class LegalHoldChange(Reply):
    case_id: str
    legal_hold: bool
    changed: bool


class RetentionOverrides(Reply):
    case_id: str
    retention_overrides: dict[RetentionRule, int]


class Erasure(Reply):
    case_id: str
    person_id: str
    items_erased: int


class RetentionRun(Reply):
    id: int
    started_at: Time
    finished_at: Time | None
    items: int
    uploads: int
    sessions: int
    audit: int


class RetentionStatus(Reply):
    items_by_state: dict[ItemState, int]
    purged_by_rule: dict[str, int]
    cases_under_legal_hold: int
    last_run: RetentionRun | None
    schedule_days: dict[str, float]
    purge_interval_seconds: float


class RetentionDue(Reply):
    item_id: str
    case_id: str
    state: ItemState
    rule: str
    due_at: Time


# -- conditions and approvals ---------------------------------------------------------------------


class ConditionVersion(Reply):
    condition_id: str
    version: int
    recorded_at: Time
    recorded_by: str | None
    change: Literal["added", "amended", "lifted"]
    snapshot: dict[str, Any] = Field(description="the condition as of this version")


class ConditionWithHistory(Condition):
    history: list[ConditionVersion]


class LiftedCondition(Condition):
    items_released_from_hold: int


class RecordedApproval(Approval):
    items_released_from_hold: int


# -- items ------------------------------------------------------------------------------------------


class ItemCommon(Reply):
    """What every view of an item shows (the services' ``_COMMON``), never content."""

    id: str
    case_id: str
    kind: ItemKind
    sender_id: str
    recipient_id: str | None
    state: ItemState
    content_type: str
    created_at: Time
    submitted_at: Time
    decided_at: Time | None
    first_opened_at: Time | None
    to_mediators: bool


class SentItem(ItemCommon):
    """An item as its sender sees it: the state in neutral words, never a reason or hold code."""

    status: Words
    note_available: bool


class StaffItem(ItemCommon):
    """An item as the case's mediators and the coordinator see it (metadata, never content)."""

    size: int
    decision: DecisionKind | None
    decided_by: str | None
    reason_code: str | None
    hold_code: str | None
    held_from: str | None
    age_seconds: int
    has_poster: bool
    reason_label: Words | None
    screening_code: str | None
    damaged_at: Time | None
    damaged_part: str | None


class SignedManifest(Reply):
    manifest: ItemManifestDoc = Field(description="the item manifest exactly as the sender signed it")
    signature: str


class SenderOriginal(SentItem, SignedManifest):
    """The sender's own item with its signed manifest."""


class StaffOriginal(StaffItem, SignedManifest):
    """An item with its signed manifest, for a case mediator."""


class SignedDecision(Reply):
    decision: DecisionDoc = Field(description="the mediator's decision document exactly as signed")
    decision_signature: str


class ReturnNote(SentItem, SignedDecision):
    """A returned item with the mediator's signed return; the sealed note is at /note/content."""


class ReceivedItem(Reply):
    """An item as its recipient sees it: released to them, screened as of now."""

    id: str
    case_id: str
    kind: ItemKind
    sender_id: str
    state: ItemState
    decided_at: Time | None
    decided_by: str | None
    first_opened_at: Time | None


class ReleasedItem(ReceivedItem, SignedDecision):
    """A released item with the mediator's signed release; the sealed rendition is at /delivery/content."""


class DeskPerson(Reply):
    id: str | None
    label: str | None
    relation: Relation | None = None
    to_mediators: bool | None = None


class Withdrawn(Reply):
    id: str
    label: str


class DeskFlags(Reply):
    held: bool
    hold_code: str | None
    hold_reason: Words | None
    participant_withdrawn: bool
    withdrawn: list[Withdrawn]
    case_paused: bool
    pause_reason: str | None
    pause_reason_label: Words | None
    damaged: bool
    damaged_parts: list[str]


class ConditionRef(Reply):
    id: str
    kind: str
    reference: str | None


class ApprovalScope(Reply):
    case_id: str
    condition_id: str
    directions: list[Literal["from_restricted", "to_restricted"]]
    kinds: list[ItemKind]


class ApprovalNeeded(Reply):
    """The condition that refers an item to the national unit, and what an approval would allow."""

    condition: ConditionRef
    approval_would_allow: ApprovalScope


class Screening(Reply):
    outcome: Literal["allow", "deny", "refer"]
    code: str
    rule: str


class DeskItem(StaffItem):
    """An item at the mediator's desk: labels and the flags a mediator acts on."""

    case_label: str | None
    sender: DeskPerson
    recipient: DeskPerson
    flags: DeskFlags
    awaiting_approval: bool
    approval: ApprovalNeeded | None


class QueueItem(DeskItem):
    """An item waiting for review, screened as of now."""

    screening: Screening


# -- limits -------------------------------------------------------------------------------------------


class Quota(Reply):
    items_per_day: int
    pending_bytes: int | None


class Quotas(Reply):
    participant: Quota
    mediator: Quota
    window: str


class KeyBundleLimits(Reply):
    fetches_per_person_per_hour: int
    fetches_per_terminal_per_hour: int
    refunded_if_signed_in_within_seconds: int


class KioskCodeLimits(Reply):
    wrong_codes_per_terminal_per_15_minutes: int


class ReasonCode(Reply):
    code: str
    label: Words


class Limits(Reply):
    """What the relay accepts and its limits, announced before anyone uploads."""

    max_upload_bytes: int
    max_letter_bytes: int
    max_video_bytes: int
    max_video_seconds: int
    video_containers: list[str]
    delivery_profile: str
    upload_expiry_hours: float
    kinds: list[ItemKind]
    chunk_size: int
    checksum_algorithms: list[str]
    quotas: Quotas
    key_bundle: KeyBundleLimits
    kiosk_code: KioskCodeLimits
    withhold_reasons: list[ReasonCode]
    pause_reasons: list[ReasonCode]
    resume_reasons: list[ReasonCode]


# -- problems -----------------------------------------------------------------------------------------


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document (``application/problem+json``). ``type`` is a stable URI
    ``urn:mediation-relay:problem:<slug>`` (docs/problems.md); ``title`` is in the language the
    request asked for. Some types add members (``errors``, ``accepted``, ``limit``, ...): clients
    must ignore members they do not know."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="invalid-field: which fields, and why")
    request_id: str | None = Field(default=None, description="the id of this request in the relay's log (also "
                                                             "the X-Request-Id header): what to quote to an operator")
