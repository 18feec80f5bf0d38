"""Retention: when does a record go? One pure decision, like screening: facts and ``now`` in,
a verdict out, no clock, no I/O.

The program's protocol allows activity records to say that something happened, never its
details, and requires every other trace outside the national unit's own files to be removed.
So every item has a schedule that depends on where it stands (waiting in review, released but
not opened, opened, returned or withheld), closed cases go as a whole, and a legal hold stops
everything while it holds. New activity in a case shortly before something would go gives it a
grace period, so a letter is not purged the day after its recipient's reply arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Which clock each item state's retention runs from.
_STATE_RULES = {
    "pending_review": ("review_wait", "submitted_at"),
    "held": ("review_wait", "submitted_at"),
    "released": ("released_undelivered", "decided_at"),
    "delivered": ("after_delivery", "first_opened_at"),
    "returned": ("returned_or_withheld", "decided_at"),
    "withheld": ("returned_or_withheld", "decided_at"),
}


@dataclass(frozen=True)
class Schedule:
    """How long each kind of record may stay. Defaults are documented in the README."""

    review_wait: timedelta = timedelta(days=90)
    released_undelivered: timedelta = timedelta(days=60)
    after_delivery: timedelta = timedelta(days=30)
    returned_or_withheld: timedelta = timedelta(days=30)
    closed_case: timedelta = timedelta(days=365)
    abandoned_upload: timedelta = timedelta(hours=24)
    session: timedelta = timedelta(days=30)
    audit_entry: timedelta = timedelta(days=7 * 365)
    grace: timedelta = timedelta(days=14)

    def duration(self, rule: str) -> timedelta:
        value: timedelta = getattr(self, rule)
        return value


@dataclass(frozen=True)
class CaseRetention:
    case_id: str
    status: str  # 'open', 'paused', 'closed'
    closed_at: datetime | None = None
    legal_hold: bool = False
    last_activity_at: datetime | None = None  # the newest submission or decision in the case
    overrides: dict[str, timedelta] = field(default_factory=dict)  # rule -> duration, per case


@dataclass(frozen=True)
class ItemRetention:
    item_id: str
    state: str
    submitted_at: datetime
    decided_at: datetime | None = None
    first_opened_at: datetime | None = None


@dataclass(frozen=True)
class Verdict:
    purge: bool
    rule: str  # the rule that decided: named in the tombstone, shown by 'relay purge --dry-run'
    due_at: datetime | None = None


KEEP_HELD = Verdict(False, "legal-hold")


def item_verdict(item: ItemRetention, case: CaseRetention, schedule: Schedule, now: datetime) -> Verdict:
    """Should this item go now? A legal hold keeps everything; a state no rule covers keeps the
    item (deleting is the step that cannot be undone, so there the safe side is to wait)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if case.legal_hold:
        return KEEP_HELD
    candidates: list[tuple[datetime, str]] = []
    if case.status == "closed" and case.closed_at is not None:
        candidates.append((case.closed_at + _length("closed_case", case, schedule), "closed-case"))
    rule = _STATE_RULES.get(item.state)
    if rule is not None:
        name, clock = rule
        # A letter to the mediators is released at submission, with no decision of its own: its
        # clock is the latest time known, never none (an item nobody decides on must still go).
        start = getattr(item, clock) or item.decided_at or item.submitted_at
        due = start + _length(name, case, schedule)
        candidates.append((_with_grace(start, due, case, schedule), name.replace("_", "-")))
    if not candidates:
        return Verdict(False, "no-rule-applies")
    due_at, reason = min(candidates)
    return Verdict(now >= due_at, reason, due_at)


def _length(rule: str, case: CaseRetention, schedule: Schedule) -> timedelta:
    return case.overrides.get(rule, schedule.duration(rule))


def _with_grace(start: datetime, due: datetime, case: CaseRetention, schedule: Schedule) -> datetime:
    """New activity in the case (after the item's own clock started) within the grace period
    before ``due`` postpones it to the grace period after that activity, and never further than
    one grace period past ``due``. Later activity can only postpone more, never less: the
    newest activity is all that is known, so the rule must be monotone in it."""
    last = case.last_activity_at
    if last is None or last <= start or last < due - schedule.grace:
        return due
    return max(due, min(last, due) + schedule.grace)


def expired(started: datetime, rule: str, schedule: Schedule, now: datetime, *, legal_hold: bool = False) -> bool:
    """For records with one clock (uploads, sessions, audit entries): past their time, not held."""
    return not legal_hold and now >= started + schedule.duration(rule)
