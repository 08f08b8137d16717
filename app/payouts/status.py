"""A payout's status and purpose: one enum each, used by every package (the column stores their values)."""

from __future__ import annotations

from enum import StrEnum


class PayoutStatus(StrEnum):
    """Where a payout is. Stored as its value (`payouts.status`, CHECK `status_known`)."""

    AWAITING_APPROVAL = "awaiting_approval"  # money held; other people must approve before the bank sees it
    PENDING = "pending"  # money held; `submit_payout` queued (or deferred while the deal is frozen)
    SUBMITTED = "submitted"  # the bank accepted it; its `payout_result` (or the watchdog's query) decides
    SUCCEEDED = "succeeded"  # paid: the hold is posted
    FAILED = "failed"  # not paid: the hold is voided, the money free again

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset({PayoutStatus.SUCCEEDED, PayoutStatus.FAILED})


class PayoutPurpose(StrEnum):
    """Why money leaves. Stored as its value (`payouts.purpose`, CHECK `purpose_known`)."""

    RELEASE = "release"  # the deal's money to a payee; drives the deal's workflow
    REFUND = "refund"  # the deal's money back to where it came from; drives the deal's workflow
    RETURN = "return"  # a suspense credit back to its payer; never touches the deal's workflow


def is_final(status: str) -> bool:
    """Whether a stored status is final (succeeded or failed)."""
    return status in FINAL
