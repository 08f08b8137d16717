"""Take an account-opening token for a bank, atomically across processes (the bucket row is locked)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import BankRateLimit
from app.db.upsert import insert_if_absent
from app.domain.rate_limit import BucketState, Limits, fresh_state, take


def take_token(session: Session, bank_code: str, limits: Limits, now: datetime) -> float:
    """0.0 when a token was taken (commit with the caller), else the seconds to wait."""
    initial = fresh_state(limits, now)
    insert_if_absent(
        session,
        BankRateLimit.__table__,
        {
            "bank_code": bank_code,
            "tokens_milli": initial.tokens_milli,
            "refreshed_at": initial.refreshed_at,
            "day": initial.day,
            "day_count": initial.day_count,
        },
    )
    row = session.scalar(
        select(BankRateLimit)
        .where(BankRateLimit.bank_code == bank_code)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None, "bucket row inserted above"
    state = BucketState(row.tokens_milli, row.refreshed_at, row.day, row.day_count)
    wait_s = take(state, limits, now)
    row.tokens_milli, row.refreshed_at, row.day, row.day_count = (
        state.tokens_milli,
        state.refreshed_at,
        state.day,
        state.day_count,
    )
    return wait_s


def drain(session: Session, bank_code: str, now: datetime) -> None:
    """The bank said we are over its limit: spend what the bucket thinks it has (it was wrong)."""
    row = session.scalar(select(BankRateLimit).where(BankRateLimit.bank_code == bank_code).with_for_update())
    if row is not None:
        row.tokens_milli, row.refreshed_at = 0, now
