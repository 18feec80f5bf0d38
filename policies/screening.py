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
  breach": exchanges with the mediator are not screened by no-contact conditions (issue 2 adds
  conditions through this same entry point).
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


@dataclass(frozen=True)
class CaseFacts:
    case_id: str
    status: str  # 'open', 'paused', 'closed'
    members: Mapping[str, Member] = field(default_factory=dict)


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

    if exchange.recipient_id is None:  # to the case's mediators
        if sender.role != "participant":
            return _deny("direction-not-allowed", "only-participants-write-to-the-mediators")
        if not any(m.role == "mediator" and m.active for m in case.members.values()):
            return _deny("no-mediator", "case-needs-an-active-mediator")
        return _check_consent(sender) or ALLOW

    recipient = case.members.get(exchange.recipient_id)
    if recipient is None:
        return _deny("recipient-not-in-case", "recipient-must-be-a-member")
    if not recipient.active:
        return _deny("recipient-revoked", "enrollment-must-be-active")
    if recipient.person_id == sender.person_id:
        return _deny("direction-not-allowed", "no-item-to-oneself")

    if sender.role == "mediator":
        if recipient.role != "participant":
            return _deny("direction-not-allowed", "mediators-write-to-participants")
        return _check_consent(recipient) or ALLOW

    if sender.role != "participant" or recipient.role != "participant":
        return _deny("direction-not-allowed", "participants-write-to-participants-or-mediators")
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
    return ALLOW


def _check_consent(participant: Member) -> Decision | None:
    if participant.role != "participant":
        return None
    if participant.consent == "given":
        return None
    if participant.consent == "withdrawn":
        return _deny("consent-withdrawn", "participation-is-voluntary-at-every-stage")
    return _deny("facts-invalid", "consent-unknown")
