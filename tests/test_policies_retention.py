"""Retention as a pure decision: every rule, the grace period, overrides and legal hold."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.retention import CaseRetention, ItemRetention, Schedule, expired, item_verdict
from relay.server.retention_config import ScheduleError, load

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
SCHEDULE = Schedule()


def item(state: str, **times: datetime) -> ItemRetention:
    return ItemRetention("itm_1", state, times.pop("submitted_at", T0), **times)


OPEN = CaseRetention("cas_1", "open")

TABLE = [
    ("an item waits in review at most 90 days", item("pending_review"), OPEN, 90, "review-wait"),
    ("a held item counts from its submission too", item("held"), OPEN, 90, "review-wait"),
    ("released but never opened: 60 days from the release", item("released", decided_at=T0 + 10 * DAY), OPEN,
     70, "released-undelivered"),
    ("opened: 30 days after first opening", item("delivered", decided_at=T0, first_opened_at=T0 + 5 * DAY), OPEN,
     35, "after-delivery"),
    ("returned: 30 days after the decision", item("returned", decided_at=T0 + DAY), OPEN, 31,
     "returned-or-withheld"),
    ("withheld: 30 days after the decision", item("withheld", decided_at=T0 + DAY), OPEN, 31,
     "returned-or-withheld"),
    ("a closed case goes as a whole, when that comes first",
     item("delivered", decided_at=T0, first_opened_at=T0 + 400 * DAY),
     CaseRetention("cas_1", "closed", closed_at=T0), 365, "closed-case"),
    ("a per-case override replaces the default",
     item("pending_review"), CaseRetention("cas_1", "open", overrides={"review_wait": 10 * DAY}), 10, "review-wait"),
]


@pytest.mark.parametrize("sentence,facts,case,days,rule", TABLE, ids=[r[0] for r in TABLE])
def test_rule(sentence: str, facts: ItemRetention, case: CaseRetention, days: int, rule: str) -> None:
    due = T0 + days * DAY
    assert item_verdict(facts, case, SCHEDULE, due - timedelta(seconds=1)).purge is False
    verdict = item_verdict(facts, case, SCHEDULE, due)
    assert (verdict.purge, verdict.rule, verdict.due_at) == (True, rule, due)


def test_new_activity_just_before_expiry_gives_a_grace_period() -> None:
    case = CaseRetention("cas_1", "open", last_activity_at=T0 + 85 * DAY)
    verdict = item_verdict(item("pending_review"), case, SCHEDULE, T0 + 95 * DAY)
    assert not verdict.purge and verdict.due_at == T0 + 99 * DAY


def test_later_activity_only_ever_postpones_and_never_past_one_grace_period() -> None:
    opened = item("delivered", decided_at=T0, first_opened_at=T0)  # due at 30 days
    dues = [item_verdict(opened, CaseRetention("cas_1", "open", last_activity_at=T0 + d * DAY), SCHEDULE,
                         T0).due_at for d in (10, 16, 20, 29, 30, 33, 45, 400)]
    assert dues == sorted(dues)  # monotone in the newest activity
    assert dues[0] == T0 + 30 * DAY and dues[2] == T0 + 34 * DAY and dues[-1] == T0 + 44 * DAY


def test_the_item_s_own_submission_is_not_new_activity() -> None:
    short = CaseRetention("cas_1", "open", last_activity_at=T0, overrides={"review_wait": 3 * DAY})
    assert item_verdict(item("pending_review"), short, SCHEDULE, T0 + 3 * DAY).purge


def test_old_activity_gives_no_grace() -> None:
    case = CaseRetention("cas_1", "open", last_activity_at=T0 + 10 * DAY)
    assert item_verdict(item("pending_review"), case, SCHEDULE, T0 + 90 * DAY).purge


def test_a_state_no_rule_covers_keeps_the_item() -> None:
    assert not item_verdict(item("uploading"), OPEN, SCHEDULE, T0 + 1000 * DAY).purge
    assert not item_verdict(item("expired"), OPEN, SCHEDULE, T0 + 1000 * DAY).purge


def test_an_item_without_its_own_clock_counts_from_the_latest_time_known() -> None:
    # A letter to the mediators is released when it arrives, with no decision of its own.
    verdict = item_verdict(item("released"), OPEN, SCHEDULE, T0 + 60 * DAY)
    assert (verdict.purge, verdict.rule, verdict.due_at) == (True, "released-undelivered", T0 + 60 * DAY)
    opened = item("delivered", decided_at=T0 + 2 * DAY)
    assert item_verdict(opened, OPEN, SCHEDULE, T0 + 32 * DAY).due_at == T0 + 32 * DAY


def test_single_clock_records() -> None:
    assert expired(T0, "abandoned_upload", SCHEDULE, T0 + timedelta(hours=24))
    assert not expired(T0, "session", SCHEDULE, T0 + 29 * DAY)
    assert not expired(T0, "audit_entry", SCHEDULE, T0 + 9000 * DAY, legal_hold=True)


moments = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
states = st.sampled_from(["pending_review", "held", "released", "delivered", "returned", "withheld", "uploading"])


@settings(max_examples=1000, deadline=None)
@given(state=states, submitted=moments, decided=st.one_of(st.none(), moments), opened=st.one_of(st.none(), moments),
       status=st.sampled_from(["open", "paused", "closed"]), closed=st.one_of(st.none(), moments),
       activity=st.one_of(st.none(), moments), now=moments)
def test_a_legal_hold_blocks_every_rule(state: str, submitted: datetime, decided: datetime | None,
                                        opened: datetime | None, status: str, closed: datetime | None,
                                        activity: datetime | None, now: datetime) -> None:
    facts = ItemRetention("itm", state, submitted, decided, opened)
    held = CaseRetention("cas", status, closed, True, activity)
    free = CaseRetention("cas", status, closed, False, activity)
    assert item_verdict(facts, held, SCHEDULE, now).purge is False
    verdict = item_verdict(facts, free, SCHEDULE, now)
    if verdict.purge:
        assert verdict.due_at is not None and now >= verdict.due_at


# -- the schedule file ---------------------------------------------------------------------------




def test_no_file_and_an_empty_file_mean_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    assert load(None) == load(tmp_path / "empty.toml") == Schedule()


def test_a_valid_file_sets_the_schedule(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text("review_wait_days = 30\ngrace_days = 0\n")
    schedule = load(tmp_path / "r.toml")
    assert schedule.review_wait == 30 * DAY and schedule.grace == timedelta(0)


@pytest.mark.parametrize("text,where", [
    ("review_wait_days = 30\nafter_delivery_days = -4\n", "line 2: after_delivery_days"),
    ("# comment\nreveiw_wait_days = 30\n", "line 2: reveiw_wait_days"),
    ("grace_days = \"two weeks\"\n", "line 1: grace_days"),
    ("review_wait_days = \n", "line 1"),
])
def test_a_bad_file_says_which_line(tmp_path: Path, text: str, where: str) -> None:
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(ScheduleError) as bad:
        load(tmp_path / "bad.toml")
    assert where in str(bad.value)


def test_the_relay_refuses_to_start_on_a_bad_schedule(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("review_wait_days = 0\n")
    done = subprocess.run([sys.executable, "-m", "relay", "serve", "--data-dir", str(tmp_path / "data"),
                           "--port", "0", "--retention", str(tmp_path / "bad.toml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "line 1: review_wait_days" in done.stderr
