"""Callback delivery: send the oldest due outbox entry, freshly signed, and record the outcome.

An entry counts as delivered only on HTTP 200 with `{"code": "OK"}` or `{"code": "DUPLICATE"}`;
anything else is retried with exponential backoff (0.5 s doubling, capped at 30 s), forever.
Entries to the same notify_url go out in the order they were written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import requests

from app.banks.protocol import BANK_PREFIX, sign_headers
from app.banks.simulator.store import Delivery, Store

DELIVERY_TIMEOUT_S = 5.0
BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 30.0
DELIVERED_CODES = frozenset({"OK", "DUPLICATE"})
_ERROR_TEXT_CHARS = 300


def backoff_s(failed_attempts: int) -> float:
    """Wait before the next attempt after `failed_attempts` (>= 1) failures."""
    assert failed_attempts >= 1, failed_attempts
    return min(BACKOFF_START_S * 2 ** min(failed_attempts - 1, 32), BACKOFF_CAP_S)


class CallbackSender:
    def __init__(
        self,
        store: Store,
        bank_private_keys: Mapping[str, bytes],
        *,
        timeout_s: float = DELIVERY_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self._bank_private_keys = bank_private_keys
        self.timeout_s = timeout_s
        self.clock = clock

    def deliver_next(self) -> bool:
        """Attempt the next due delivery; False when none is due."""
        with self.store.transaction() as tx:
            delivery = tx.next_delivery(self.clock())
        if delivery is None:
            return False
        error = self._attempt(delivery)
        finished_at = self.clock()
        with self.store.transaction() as tx:
            if error is None:
                tx.mark_delivered(delivery.id, finished_at)
            else:
                tx.record_failed_attempt(delivery.id, error, finished_at + backoff_s(delivery.attempts + 1))
        return True

    def _attempt(self, delivery: Delivery) -> str | None:
        """Send once; None on success, else a short description of what went wrong."""
        headers = sign_headers(BANK_PREFIX, self._bank_private_keys[delivery.bank_code], delivery.body)
        headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            response = requests.post(delivery.notify_url, data=delivery.body, headers=headers, timeout=self.timeout_s)
        except requests.RequestException as error:
            return f"发送失败：{error}"[:_ERROR_TEXT_CHARS]
        if response.status_code == 200 and _answer_code(response) in DELIVERED_CODES:
            return None
        return f"HTTP {response.status_code}：{response.text}"[:_ERROR_TEXT_CHARS]


def _answer_code(response: requests.Response) -> str | None:
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer.get("code") if isinstance(answer, dict) else None
