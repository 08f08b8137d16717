"""A deal's request for its custody account at the bank: the account row (status `requested`) and the job that
carries the request to the bank. Built here once, for the `request_virtual_account` action (one deal) and the
contract import (many); a module without dependencies, so the import does not load the action registry."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any


def virtual_account_request(
    deal_id: int, deal_no: str, bank_code: str, designated: bool, now: datetime
) -> dict[str, Any]:
    """The row that asks the bank for a deal's custody account (`designated`: only the payer the city
    designates may pay in); the job `account_opening` names carries the request to the bank."""
    return {
        "deal_id": deal_id,
        "bank_code": bank_code,
        "request_id": f"VA-{uuid.uuid4().hex}",
        "account_name": f"存管-{deal_no}",
        "status": "requested",
        "designated_payer": designated,
        "requested_at": now,
    }


def account_opening(account_id: int) -> tuple[str, dict[str, Any]]:
    """The job (kind, payload) that opens a requested account at its bank."""
    return "open_virtual_account", {"virtual_account_id": account_id}
