"""The retention schedule file (TOML), validated by pydantic when the relay starts.

A bad file stops the relay with a message that names the file, the line and what is wrong, so
an operator fixes it before anything is kept too long or deleted too soon. Every setting has a
default (README, "Retention"), so an empty file, or none, means the defaults.

    review_wait_days = 90            # an item waiting for the mediator's review
    released_undelivered_days = 60   # released but not yet opened
    after_delivery_days = 30         # available after it was first opened
    returned_or_withheld_days = 30   # returned to its sender, or withheld
    closed_case_days = 365           # everything of a case, after it was closed
    abandoned_upload_hours = 24      # an unfinished resumable upload
    session_days = 30                # ended sessions' records
    audit_entry_days = 2555          # audit entries (seven years)
    grace_days = 14                  # new activity in the case shortly before expiry
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policies.retention import Schedule


class ScheduleError(Exception):
    """The retention file cannot be used; the message says where and why."""


class ScheduleFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    review_wait_days: int = Field(90, ge=1, le=3650)
    released_undelivered_days: int = Field(60, ge=1, le=3650)
    after_delivery_days: int = Field(30, ge=1, le=3650)
    returned_or_withheld_days: int = Field(30, ge=1, le=3650)
    closed_case_days: int = Field(365, ge=1, le=3650)
    abandoned_upload_hours: int = Field(24, ge=1, le=24 * 30)
    session_days: int = Field(30, ge=1, le=3650)
    audit_entry_days: int = Field(7 * 365, ge=30, le=36500)
    grace_days: int = Field(14, ge=0, le=365)

    def schedule(self) -> Schedule:
        days = timedelta(days=1)
        return Schedule(
            review_wait=self.review_wait_days * days, released_undelivered=self.released_undelivered_days * days,
            after_delivery=self.after_delivery_days * days, returned_or_withheld=self.returned_or_withheld_days * days,
            closed_case=self.closed_case_days * days, abandoned_upload=timedelta(hours=self.abandoned_upload_hours),
            session=self.session_days * days, audit_entry=self.audit_entry_days * days, grace=self.grace_days * days)


def load(path: Path | None) -> Schedule:
    if path is None:
        return ScheduleFile().schedule()
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ScheduleError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScheduleError(f"{path}: not valid TOML: {exc}") from None  # the message names line and column
    try:
        return ScheduleFile.model_validate(data).schedule()
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        key = str(first["loc"][0]) if first["loc"] else ""
        return_line = _line_of(text, key)
        where = f"line {return_line}: " if return_line else ""
        raise ScheduleError(f"{path}: {where}{key}: {first['msg']}") from None


def _line_of(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            return number
    return None


def to_json(schedule: Schedule) -> str:
    """The schedule as the relay records it at start (seconds per setting)."""
    return json.dumps({name: value.total_seconds() for name, value in vars(schedule).items()}, sort_keys=True)


def from_json(text: str) -> Schedule:
    return Schedule(**{name: timedelta(seconds=seconds) for name, seconds in json.loads(text).items()})
