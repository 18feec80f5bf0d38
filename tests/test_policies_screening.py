"""Screening as a pure decision: every rule, from the program's own sentences, without a server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.screening import CaseFacts, Exchange, Member, Outcome, screen, side_of

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
V, O, M, F = "per_victim", "per_offender", "per_mediator", "per_family"


def case(status: str = "open", **changes: Member) -> CaseFacts:
    members = {
        V: Member(V, "participant", True, "victim", "given"),
        O: Member(O, "participant", True, "offender", "given"),
        F: Member(F, "participant", True, "victim_family", "given"),
        M: Member(M, "mediator", True),
    }
    members.update(changes)
    return CaseFacts("cas_1", status, members)


def ex(sender: str, recipient: str | None, moment: str = "submit") -> Exchange:
    return Exchange(moment, "letter", sender, recipient)


# (source sentence, facts, exchange, expected outcome, expected code)
TABLE = [
    ("victims and offenders exchange letters through the mediator",
     case(), ex(V, O), Outcome.ALLOW, "allowed"),
    ("the offender may answer",
     case(), ex(O, V, "release"), Outcome.ALLOW, "allowed"),
    ("family of the victim may take part",
     case(), ex(F, O, "fetch"), Outcome.ALLOW, "allowed"),
    ("the mediator works with each side separately: anyone may write to the mediator",
     case(), ex(O, None), Outcome.ALLOW, "allowed"),
    ("mediator-relayed messages: the mediator writes to either participant",
     case(), ex(M, V), Outcome.ALLOW, "allowed"),
    ("participation is voluntary at all stages: a withdrawn sender sends nothing",
     case(**{V: Member(V, "participant", True, "victim", "withdrawn")}), ex(V, O), Outcome.DENY, "consent-withdrawn"),
    ("a withdrawal is respected at once: nothing is delivered to a withdrawn recipient",
     case(**{O: Member(O, "participant", True, "offender", "withdrawn")}), ex(V, O, "fetch"), Outcome.DENY,
     "consent-withdrawn"),
    ("a participant may stop at any point ... and may revisit it later: a withdrawn participant may still write"
     " to the mediator",
     case(**{V: Member(V, "participant", True, "victim", "withdrawn")}), ex(V, None), Outcome.ALLOW, "allowed"),
    ("a withdrawn participant receives nothing, not even from the mediator",
     case(**{O: Member(O, "participant", True, "offender", "withdrawn")}), ex(M, O), Outcome.DENY, "consent-withdrawn"),
    ("exchanges cross sides: victim family to victim is not a victim-offender exchange",
     case(), ex(F, V), Outcome.DENY, "direction-not-allowed"),
    ("paused cases deliver nothing between participants",
     case("paused"), ex(V, O, "fetch"), Outcome.DENY, "case-paused"),
    ("a paused case still lets a participant reach the mediator",
     case("paused"), ex(V, None), Outcome.ALLOW, "allowed"),
    ("closed cases carry nothing, not even to the mediator",
     case("closed"), ex(V, None), Outcome.DENY, "case-closed"),
    ("only members of the case take part",
     case(), ex("per_stranger", O), Outcome.DENY, "sender-not-in-case"),
    ("only members of the case receive",
     case(), ex(V, "per_stranger"), Outcome.DENY, "recipient-not-in-case"),
    ("a revoked enrollment ends a person's part",
     case(**{O: Member(O, "participant", False, "offender", "given")}), ex(V, O), Outcome.DENY, "recipient-revoked"),
    ("a revoked mediator cannot write",
     case(**{M: Member(M, "mediator", False)}), ex(M, V), Outcome.DENY, "sender-revoked"),
    ("missing facts deny: a participant with no known consent",
     case(**{V: Member(V, "participant", True, "victim", None)}), ex(V, O), Outcome.DENY, "facts-invalid"),
    ("missing facts deny: a participant whose side is unknown",
     case(**{V: Member(V, "participant", True, "neighbour", "given")}), ex(V, O), Outcome.DENY, "facts-invalid"),
    ("nothing between participants can be reviewed without an active mediator",
     case(**{M: Member(M, "mediator", False)}), ex(V, O), Outcome.DENY, "no-mediator"),
    ("no case, no exchange",
     None, ex(V, O), Outcome.DENY, "case-unknown"),
]


@pytest.mark.parametrize("sentence,facts,exchange,outcome,code", TABLE, ids=[row[0] for row in TABLE])
def test_rule(sentence: str, facts: CaseFacts | None, exchange: Exchange, outcome: Outcome, code: str) -> None:
    decision = screen(facts, exchange, NOW)
    assert (decision.outcome, decision.code) == (outcome, code), decision.rule


def test_a_naive_clock_is_refused() -> None:
    assert screen(case(), ex(V, O), datetime(2026, 1, 1)).outcome is Outcome.DENY


def test_sides() -> None:
    assert side_of("victim_representative") == "victim"
    assert side_of("offender_family") == "offender"
    assert side_of(None) is None


people = st.sampled_from([V, O, F, M, "per_stranger"])
members = st.builds(
    Member, st.sampled_from([V, O, F, M]), st.sampled_from(["participant", "mediator", "coordinator"]),
    st.booleans(), st.sampled_from([None, "victim", "offender", "victim_family", "odd"]),
    st.sampled_from([None, "given", "withdrawn", "maybe"]))


@settings(max_examples=1000, deadline=None)
@given(status=st.sampled_from(["open", "paused", "closed", "unknown"]), changed=st.lists(members, max_size=4),
       sender=people, recipient=st.one_of(st.none(), people), moment=st.sampled_from(["submit", "release", "fetch"]))
def test_nothing_reaches_a_withdrawn_or_revoked_person_or_a_closed_case(
        status: str, changed: list[Member], sender: str, recipient: str | None, moment: str) -> None:
    facts = case(status, **{m.person_id: m for m in changed})
    decision = screen(facts, Exchange(moment, "letter", sender, recipient), NOW)
    if decision.allowed:
        assert facts.status in ("open", "paused")
        involved = [facts.members[sender]] + ([facts.members[recipient]] if recipient else [])
        for member in involved:
            assert member.active
            writing_to_the_mediator = recipient is None
            if member.role == "participant" and not writing_to_the_mediator:
                assert member.consent == "given"
        if recipient is not None and facts.members[sender].role == "participant":
            assert status == "open"  # between participants only in an open case


# -- conditions and approvals, from the program's protocol (shared/seeds/004_ca1c04e6303df5b6.txt) --

from datetime import timedelta  # noqa: E402

from policies.screening import Approval, Condition  # noqa: E402

EARLIER, LATER = NOW - timedelta(days=30), NOW + timedelta(days=30)


def order(**changes: object) -> Condition:
    values: dict[str, object] = dict(id="cnd_1", kind="court_order", restricted=O, direction="both",
                                     effective_from=EARLIER, protected=frozenset({V}))
    values.update(changes)
    return Condition(**values)  # type: ignore[arg-type]


def approval(**changes: object) -> Approval:
    values: dict[str, object] = dict(id="apr_1", case_id="cas_1", condition_id="cnd_1",
                                     directions=frozenset({"from_restricted", "to_restricted"}),
                                     kinds=frozenset({"letter"}), approved_at=EARLIER, valid_until=LATER)
    values.update(changes)
    return Approval(**values)  # type: ignore[arg-type]


def with_facts(conditions: tuple[Condition, ...] = (), approvals: tuple[Approval, ...] = (),
               status: str = "open") -> CaseFacts:
    return CaseFacts("cas_1", status, case().members, conditions, approvals)


CONDITION_TABLE = [
    ("all requests for communication where a non-communication order or a no contact condition is in place are"
     " to be referred to the NHQ Restorative Justice Unit",
     with_facts((order(),)), ex(O, V), Outcome.REFER, "condition-requires-approval"),
    ("...referred: also a letter to the restricted person, when the order runs both ways",
     with_facts((order(),)), ex(V, O, "fetch"), Outcome.REFER, "condition-requires-approval"),
    ("a one-way condition (from the offender) does not cover the victim's letters to them",
     with_facts((order(direction="from_restricted"),)), ex(V, O), Outcome.ALLOW, "allowed"),
    ("a meeting between an offender and a Restorative Opportunities Mediator is not considered a breach",
     with_facts((order(),)), ex(O, None), Outcome.ALLOW, "allowed"),
    ("...nor is the mediator's message to the offender",
     with_facts((order(),)), ex(M, O), Outcome.ALLOW, "allowed"),
    ('"unless deemed appropriate and facilitated by CSC\'s Restorative Opportunities Program"',
     with_facts((order(program_exception=True),)), ex(O, V, "release"), Outcome.ALLOW, "allowed"),
    ("the national unit's recorded approval allows the facilitated exchange",
     with_facts((order(),), (approval(),)), ex(O, V, "release"), Outcome.ALLOW, "allowed"),
    ("an approval covers only its directions",
     with_facts((order(),), (approval(directions=frozenset({"to_restricted"})),)), ex(O, V), Outcome.REFER,
     "condition-requires-approval"),
    ("an approval covers only its kinds of item",
     with_facts((order(),), (approval(kinds=frozenset({"video"})),)), ex(O, V), Outcome.REFER,
     "condition-requires-approval"),
    ("an expired approval no longer allows anything",
     with_facts((order(),), (approval(valid_until=NOW),)), ex(O, V, "fetch"), Outcome.REFER,
     "condition-requires-approval"),
    ("a revoked approval no longer allows anything",
     with_facts((order(),), (approval(revoked_at=NOW - timedelta(seconds=1)),)), ex(O, V, "fetch"), Outcome.REFER,
     "condition-requires-approval"),
    ("an approval under another condition does not count",
     with_facts((order(),), (approval(condition_id="cnd_2"),)), ex(O, V), Outcome.REFER,
     "condition-requires-approval"),
    ("a condition not yet in effect covers nothing",
     with_facts((order(effective_from=LATER),)), ex(O, V), Outcome.ALLOW, "allowed"),
    ("a condition past its end covers nothing",
     with_facts((order(effective_until=NOW),)), ex(O, V), Outcome.ALLOW, "allowed"),
    ("a lifted condition covers nothing",
     with_facts((order(lifted_at=NOW),)), ex(O, V), Outcome.ALLOW, "allowed"),
    ("a condition protecting every participant on one side of the case",
     with_facts((order(protected=frozenset(), protected_side=("cas_1", "victim")),)), ex(O, F), Outcome.REFER,
     "condition-requires-approval"),
    ("...of this case only",
     with_facts((order(protected=frozenset(), protected_side=("cas_9", "victim")),)), ex(O, F), Outcome.ALLOW,
     "allowed"),
    ("contradictory facts deny: a condition that ends before it starts",
     with_facts((order(effective_until=EARLIER - timedelta(days=1)),)), ex(O, V), Outcome.DENY, "facts-invalid"),
    ("missing facts deny: a condition that protects no one",
     with_facts((order(protected=frozenset()),)), ex(O, V), Outcome.DENY, "facts-invalid"),
    ("missing facts deny: an unknown direction",
     with_facts((order(direction="sideways"),)), ex(O, V), Outcome.DENY, "facts-invalid"),
    ("consent comes first: a withdrawn recipient receives nothing, approval or not",
     CaseFacts("cas_1", "open", case(**{V: Member(V, "participant", True, "victim", "withdrawn")}).members,
               (order(),), (approval(),)), ex(O, V), Outcome.DENY, "consent-withdrawn"),
]


@pytest.mark.parametrize("sentence,facts,exchange,outcome,code", CONDITION_TABLE, ids=[r[0][:80] for r in CONDITION_TABLE])
def test_condition_rule(sentence: str, facts: CaseFacts, exchange: Exchange, outcome: Outcome, code: str) -> None:
    decision = screen(facts, exchange, NOW)
    assert (decision.outcome, decision.code) == (outcome, code), decision.rule


moments = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 1, 1), timezones=st.just(UTC))
conditions = st.builds(
    Condition, id=st.sampled_from(["cnd_1", "cnd_2"]), kind=st.sampled_from(["court_order", "parole_condition"]),
    restricted=st.sampled_from([V, O, F]), direction=st.sampled_from(["from_restricted", "to_restricted", "both"]),
    effective_from=moments, effective_until=st.one_of(st.none(), moments), program_exception=st.booleans(),
    protected=st.frozensets(st.sampled_from([V, O, F]), max_size=2),
    protected_side=st.one_of(st.none(), st.tuples(st.sampled_from(["cas_1", "cas_2"]),
                                                  st.sampled_from(["victim", "offender"]))),
    lifted_at=st.one_of(st.none(), moments))
approvals = st.builds(
    Approval, id=st.just("apr"), case_id=st.just("cas_1"), condition_id=st.sampled_from(["cnd_1", "cnd_2"]),
    directions=st.frozensets(st.sampled_from(["from_restricted", "to_restricted"]), min_size=1),
    kinds=st.frozensets(st.sampled_from(["letter", "video"]), min_size=1), approved_at=moments, valid_until=moments,
    revoked_at=st.one_of(st.none(), moments))


def covered_without_leave(facts: CaseFacts, exchange: Exchange, now: datetime) -> bool:
    """An independent statement of the rule: some active condition covers this exchange, and it
    has neither the program's exception nor a valid approval for this direction and kind."""
    for c in facts.conditions:
        active = (c.effective_from <= now and (c.effective_until is None or now < c.effective_until)
                  and (c.lifted_at is None or now < c.lifted_at))
        if not active:
            continue

        def protected(person: str, c: Condition = c) -> bool:
            member = facts.members.get(person)
            by_side = (c.protected_side is not None and c.protected_side[0] == facts.case_id and member is not None
                       and side_of(member.relation) == c.protected_side[1])
            return person in c.protected or by_side

        for direction, restricted_end, other_end in (("from_restricted", exchange.sender_id, exchange.recipient_id),
                                                     ("to_restricted", exchange.recipient_id, exchange.sender_id)):
            if c.direction not in (direction, "both") or restricted_end != c.restricted or other_end is None:
                continue
            if not protected(other_end) or c.program_exception:
                continue
            approved = any(a.condition_id == c.id and direction in a.directions and exchange.kind in a.kinds
                           and a.approved_at <= now < a.valid_until and (a.revoked_at is None or now < a.revoked_at)
                           for a in facts.approvals)
            if not approved:
                return True
    return False


@settings(max_examples=1000, deadline=None)
@given(conds=st.lists(conditions, max_size=3), apps=st.lists(approvals, max_size=3), now=moments,
       sender=st.sampled_from([V, O, F, M]), recipient=st.one_of(st.none(), st.sampled_from([V, O, F])),
       moment=st.sampled_from(["release", "fetch"]), kind=st.sampled_from(["letter", "video"]))
def test_nothing_is_released_or_served_past_a_condition_without_exception_or_approval(
        conds: list[Condition], apps: list[Approval], now: datetime, sender: str, recipient: str | None,
        moment: str, kind: str) -> None:
    facts = with_facts(tuple(conds), tuple(apps))
    exchange = Exchange(moment, kind, sender, recipient)
    decision = screen(facts, exchange, now)
    if decision.allowed:
        assert not covered_without_leave(facts, exchange, now)
    if recipient is None or sender == M:  # writing to or from the mediator
        assert decision.code != "condition-requires-approval"
