"""Screening: may this exchange happen now? One pure decision, used at submit, release and fetch.

Every input is a fact passed in, including ``now``; nothing here reads a clock, a database or
the network, so the rules are tested exhaustively on their own. Missing or contradictory facts
deny (fail closed).

Rules come from the program's documents (``shared/seeds``):

- "Participation is voluntary at all stages" and "a participant may stop at any point and the
  decision is respected": a withdrawn participant sends and receives nothing.
- The mediator works with each side separately ("mediator-relayed messages"): participants on
  opposite sides exchange through review; anyone in the case may write to the mediators, and a
  mediator may write to either participant.
- "A meeting between an offender and a Restorative Opportunities Mediator is not considered a
  breach": exchanges with the case's own mediator are never blocked by a condition. A withdrawn
  participant receives nothing, not even from the mediator (their decision is respected), but
  may still write to the mediator, which is how they "may revisit it later".
- "All requests for communication where a non-communication order or a no contact condition is
  in place are to be referred to the NHQ Restorative Justice Unit": an exchange between
  participants that an active condition covers is *referred* (it waits for the national unit's
  recorded approval) unless the condition carries the wording "unless deemed appropriate and
  facilitated by CSC's Restorative Opportunities Program", which mediator review satisfies.
- Paused and closed cases deliver nothing between participants; a paused case still lets
  participants and mediators write to each other, a closed one does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

VICTIM_SIDE = frozenset({"victim", "victim_representative", "victim_family"})
OFFENDER_SIDE = frozenset({"offender", "offender_family"})
MOMENTS = frozenset({"submit", "release", "fetch"})


def side_of(relation: str | None) -> str | None:
    """'victim' or 'offender' for a participant's relation to the harm; None if unknown."""
    if relation in VICTIM_SIDE:
        return "victim"
    if relation in OFFENDER_SIDE:
        return "offender"
    return None


class Outcome(str, Enum):
    ALLOW = "allow"
    REFER = "refer"  # needs the national unit's approval (conditions, issue 2)
    DENY = "deny"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    code: str  # stable reason code, safe to show staff and to audit
    rule: str  # which rule decided, for mediators and coordinators

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW


@dataclass(frozen=True)
class Member:
    person_id: str
    role: str  # 'participant' or 'mediator'
    active: bool  # enrollment not revoked
    relation: str | None = None  # participants only
    consent: str | None = None  # participants only: 'given' or 'withdrawn'


CONDITION_KINDS = frozenset({"court_order", "parole_condition", "institutional"})
DIRECTIONS = frozenset({"from_restricted", "to_restricted", "both"})


@dataclass(frozen=True)
class Condition:
    """A court non-communication order, a parole no-contact condition, or an institutional one."""

    id: str
    kind: str
    restricted: str  # the person the condition restricts
    direction: str  # 'from_restricted', 'to_restricted' or 'both'
    effective_from: datetime
    effective_until: datetime | None = None
    program_exception: bool = False  # carries "unless ... facilitated by CSC's Restorative Opportunities Program"
    protected: frozenset[str] = frozenset()  # named people
    protected_side: tuple[str, str] | None = None  # (case id, 'victim' or 'offender'): everyone on that side
    lifted_at: datetime | None = None


@dataclass(frozen=True)
class Approval:
    """The national unit's recorded approval of facilitated communication under one condition."""

    id: str
    case_id: str
    condition_id: str
    directions: frozenset[str]  # 'from_restricted', 'to_restricted'
    kinds: frozenset[str]  # 'letter', 'video'
    approved_at: datetime
    valid_until: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class CaseFacts:
    case_id: str
    status: str  # 'open', 'paused', 'closed'
    members: Mapping[str, Member] = field(default_factory=dict)
    conditions: tuple[Condition, ...] = ()  # every condition naming a member (active or not)
    approvals: tuple[Approval, ...] = ()  # every approval recorded for this case


@dataclass(frozen=True)
class Exchange:
    moment: str  # 'submit', 'release', 'fetch'
    kind: str  # 'letter', 'video'
    sender_id: str
    recipient_id: str | None  # None: addressed to the case's mediators


def _deny(code: str, rule: str) -> Decision:
    return Decision(Outcome.DENY, code, rule)


ALLOW = Decision(Outcome.ALLOW, "allowed", "all-checks-passed")


def screen(case: CaseFacts | None, exchange: Exchange, now: datetime) -> Decision:
    """Decide one exchange at one moment. The first rule that refuses decides."""
    if now.tzinfo is None:
        return _deny("facts-invalid", "time-must-be-aware")
    if exchange.moment not in MOMENTS or exchange.kind not in ("letter", "video"):
        return _deny("facts-invalid", "unknown-moment-or-kind")
    if case is None:
        return _deny("case-unknown", "case-must-exist")
    if case.status not in ("open", "paused", "closed"):
        return _deny("facts-invalid", "unknown-case-status")
    if case.status == "closed":
        return _deny("case-closed", "closed-cases-carry-nothing")

    sender = case.members.get(exchange.sender_id)
    if sender is None:
        return _deny("sender-not-in-case", "sender-must-be-a-member")
    if not sender.active:
        return _deny("sender-revoked", "enrollment-must-be-active")

    if exchange.recipient_id is None:  # to the case's mediators: never a breach
        if sender.role != "participant":
            return _deny("direction-not-allowed", "only-participants-write-to-the-mediators")
        if not any(m.role == "mediator" and m.active for m in case.members.values()):
            return _deny("no-mediator", "case-needs-an-active-mediator")
        return ALLOW

    recipient = case.members.get(exchange.recipient_id)
    if recipient is None:
        return _deny("recipient-not-in-case", "recipient-must-be-a-member")
    if not recipient.active:
        return _deny("recipient-revoked", "enrollment-must-be-active")
    if recipient.person_id == sender.person_id:
        return _deny("direction-not-allowed", "no-item-to-oneself")

    if sender.role == "mediator":  # the mediator works with each side separately
        if recipient.role != "participant":
            return _deny("direction-not-allowed", "mediators-write-to-participants")
        return _check_consent(recipient) or ALLOW

    if sender.role != "participant" or recipient.role != "participant":
        return _deny("direction-not-allowed", "participants-write-to-participants-or-mediators")
    if not any(m.role == "mediator" and m.active for m in case.members.values()):
        # No one could review it: the sender seals only to the mediators (and themself).
        return _deny("no-mediator", "case-needs-an-active-mediator")
    consent = _check_consent(sender) or _check_consent(recipient)
    if consent:
        return consent
    sender_side, recipient_side = side_of(sender.relation), side_of(recipient.relation)
    if sender_side is None or recipient_side is None:
        return _deny("facts-invalid", "participant-side-unknown")
    if sender_side == recipient_side:
        return _deny("direction-not-allowed", "exchanges-cross-sides")
    if case.status == "paused":
        return _deny("case-paused", "paused-cases-deliver-nothing-between-participants")
    return _check_conditions(case, exchange, sender, recipient, now)


def _check_conditions(case: CaseFacts, exchange: Exchange, sender: Member, recipient: Member,
                      now: datetime) -> Decision:
    """Refer an exchange that an active condition covers, unless its exception or an approval allows it."""
    for condition in case.conditions:
        problem = _invalid_condition(condition)
        if problem:
            return _deny("facts-invalid", problem)
    for approval in case.approvals:
        if (approval.case_id != case.case_id or not approval.directions <= {"from_restricted", "to_restricted"}
                or _naive(approval.approved_at, approval.valid_until, approval.revoked_at)):
            return _deny("facts-invalid", f"approval-{approval.id}-is-malformed")
    for condition in sorted(case.conditions, key=lambda c: c.id):
        if not _active(condition, now):
            continue
        direction = _covered_direction(condition, case, sender.person_id, recipient.person_id)
        if direction is None:
            continue
        if condition.program_exception:
            continue  # mediated exchange is the program's facilitation the wording allows
        if any(_approves(a, condition, direction, exchange.kind, now) for a in case.approvals):
            continue
        return Decision(Outcome.REFER, "condition-requires-approval",
                        f"condition-{condition.id}-{condition.kind}-{direction}-needs-national-unit-approval")
    return ALLOW


def _naive(*moments: datetime | None) -> bool:
    return any(m is not None and m.tzinfo is None for m in moments)


def _invalid_condition(condition: Condition) -> str | None:
    if condition.kind not in CONDITION_KINDS or condition.direction not in DIRECTIONS:
        return f"condition-{condition.id}-kind-or-direction-unknown"
    if _naive(condition.effective_from, condition.effective_until, condition.lifted_at):
        return f"condition-{condition.id}-time-must-be-aware"
    if condition.effective_until is not None and condition.effective_until <= condition.effective_from:
        return f"condition-{condition.id}-ends-before-it-starts"
    if not condition.protected and condition.protected_side is None:
        return f"condition-{condition.id}-protects-no-one"
    return None


def _active(condition: Condition, now: datetime) -> bool:
    if now < condition.effective_from:
        return False
    if condition.effective_until is not None and now >= condition.effective_until:
        return False
    return condition.lifted_at is None or now < condition.lifted_at


def _protects(condition: Condition, case: CaseFacts, person_id: str) -> bool:
    if person_id in condition.protected:
        return True
    if condition.protected_side is None:
        return False
    case_id, side = condition.protected_side
    member = case.members.get(person_id)
    return case_id == case.case_id and member is not None and side_of(member.relation) == side


def _covered_direction(condition: Condition, case: CaseFacts, sender_id: str, recipient_id: str) -> str | None:
    """'from_restricted' or 'to_restricted' if the condition covers this exchange; else None."""
    if (condition.direction in ("from_restricted", "both") and sender_id == condition.restricted
            and _protects(condition, case, recipient_id)):
        return "from_restricted"
    if (condition.direction in ("to_restricted", "both") and recipient_id == condition.restricted
            and _protects(condition, case, sender_id)):
        return "to_restricted"
    return None


def _approves(approval: Approval, condition: Condition, direction: str, kind: str, now: datetime) -> bool:
    return (approval.condition_id == condition.id and direction in approval.directions and kind in approval.kinds
            and approval.approved_at <= now < approval.valid_until
            and (approval.revoked_at is None or now < approval.revoked_at))


def _check_consent(participant: Member) -> Decision | None:
    if participant.role != "participant":
        return None
    if participant.consent == "given":
        return None
    if participant.consent == "withdrawn":
        return _deny("consent-withdrawn", "participation-is-voluntary-at-every-stage")
    return _deny("facts-invalid", "consent-unknown")
