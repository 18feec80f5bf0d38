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
