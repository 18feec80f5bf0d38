"""The limits that keep one person (or one attacker) from taking the relay's room: quotas on what
a person submits, security events aggregated per window, and what ``GET /v1/limits`` announces.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from relay import i18n
from relay.server.context import Context
from relay.server.errors import QuotaExceeded
from relay.server.principal import Principal
from relay.wire import PAUSE_REASONS, RESUME_REASONS, WITHHOLD_REASONS
from storage import accounts, items
from storage import errors as storage_errors
from storage.clock import iso, parse
from storage.rows import Actor

DAY = timedelta(days=1)


# -- security events ----------------------------------------------------------------------------


def window_end(ctx: Context) -> str:
    """Where a security event's aggregation window ends if it opens now."""
    return iso(ctx.clock.now() + timedelta(seconds=ctx.settings.security_event_window_seconds))


async def security_event(ctx: Context, *, action: str, actor: Actor, code: str | None = None,
                         subject: str | None = None, case_id: str | None = None, item_id: str | None = None) -> None:
    """A refusal worth recording: one audit entry per actor, reason and window; repeats counted."""
    await accounts.record_security_event(ctx.db, action=action, now=ctx.now_iso(), actor=actor, code=code,
                                         subject=subject, case_id=case_id, item_id=item_id,
                                         window_end=window_end(ctx))


# -- quotas -------------------------------------------------------------------------------------


def quota_for(ctx: Context, who: Principal) -> items.Quota:
    """This person's quota as of now: mediators writing to participants have their own."""
    s = ctx.settings
    mediator = who.role == "mediator"
    return items.Quota(
        items_per_day=s.quota_mediator_items_per_day if mediator else s.quota_items_per_day,
        pending_bytes=None if mediator else s.quota_pending_bytes,  # a mediator's messages never wait in review
        since=iso(ctx.clock.now() - DAY))


def refusal(ctx: Context, exc: storage_errors.QuotaExceeded) -> QuotaExceeded:
    """The problem for a spent quota; when it frees up at a known time (the daily count), the
    seconds until then also go in Retry-After. Pending bytes free up only as the mediator decides."""
    error = QuotaExceeded(quota=exc.quota, limit=exc.limit, used=exc.used, resets_at=exc.resets_at)
    if exc.resets_at is not None:
        error.retry_after = max(1, math.ceil((parse(exc.resets_at) - ctx.clock.now()).total_seconds()))
    return error


async def check_quota(ctx: Context, who: Principal, *, size: int) -> None:
    """Refuse early, before any byte is received; ``items.create`` checks again in the same
    transaction as the insert, so parallel submissions cannot pass it together."""
    try:
        await items.check_quota(ctx.db, who.person_id, quota_for(ctx, who), size=size)
    except storage_errors.QuotaExceeded as exc:
        raise refusal(ctx, exc) from None


# -- what the relay announces ----------------------------------------------------------------


def _labelled(prefix: str, codes: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"code": code, "label": i18n.both(f"{prefix}.{code}")} for code in codes]


def announce(ctx: Context) -> dict[str, Any]:
    s = ctx.settings
    return {
        "quotas": {
            "participant": {"items_per_day": s.quota_items_per_day, "pending_bytes": s.quota_pending_bytes},
            "mediator": {"items_per_day": s.quota_mediator_items_per_day, "pending_bytes": None},
            "window": "rolling 24 hours; pending bytes free up as the mediator decides",
        },
        "key_bundle": {"fetches_per_person_per_hour": s.bundle_fetches_per_hour,
                       "fetches_per_terminal_per_hour": s.bundle_fetches_per_terminal_per_hour,
                       "refunded_if_signed_in_within_seconds": s.bundle_refund_seconds},
        "kiosk_code": {"wrong_codes_per_terminal_per_15_minutes": s.kiosk_code_attempts_per_terminal},
        "withhold_reasons": _labelled("withhold", WITHHOLD_REASONS),
        "pause_reasons": _labelled("pause", PAUSE_REASONS),
        "resume_reasons": _labelled("resume", RESUME_REASONS),
    }
