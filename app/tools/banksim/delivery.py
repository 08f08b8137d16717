"""Callback delivery: send the oldest due outbox entry, freshly signed, and record the outcome.

An entry counts as delivered only on HTTP 200 with `{"code": "OK"}` or `{"code": "DUPLICATE"}`;
anything else is retried with exponential backoff (0.5 s doubling, capped at 30 s), forever.
Entries to the same notify_url go out in the order they were written (unless the reorder fault is on).

The background worker sends what is due in batches of up to `parallel` requests at once (`deliver_due`), as a
bank's gateway would: the platform answers each callback in tens of milliseconds, and one at a time a busy
hour of notifications would queue for seconds. Concurrency changes no fault: drops, duplicates and holds are
decided when a notification is written; an ordered entry is due only once every older ordered entry to its
URL is delivered, so at most one per URL is in a batch; the two copies of a duplicate go one after the other.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import requests

from app.banks.protocol import BANK_PREFIX, sign_headers
from app.tools.banksim.store import Delivery, Store, Transaction

DELIVERY_TIMEOUT_S = 5.0
DELIVERY_PARALLEL = 8  # requests in flight at once (deliver_due)
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
        parallel: int = DELIVERY_PARALLEL,
    ) -> None:
        self.store = store
        self._bank_private_keys = bank_private_keys
        self.timeout_s = timeout_s
        self.clock = clock
        self.parallel = parallel
        self._senders: ThreadPoolExecutor | None = None  # started by the first batch of more than one

    def deliver_next(self) -> bool:
        """Attempt the next due delivery; False when none is due."""
        with self.store.transaction() as tx:
            delivery = tx.next_delivery(self.clock())
        if delivery is None:
            return False
        error = self._attempt(delivery)
        finished_at = self.clock()
        with self.store.transaction() as tx:
            self._record(tx, delivery, error, finished_at)
        return True

    def deliver_due(self) -> int:
        """Attempt up to `parallel` due deliveries at once and record each outcome; returns how many were
        attempted (0 when none is due). Not to be called from two threads at once."""
        with self.store.transaction() as tx:
            batch = tx.due_deliveries(self.clock(), self.parallel)
        if len(batch) > 1:
            if self._senders is None:
                self._senders = ThreadPoolExecutor(self.parallel, thread_name_prefix="bank-sim-delivery")
            errors = list(self._senders.map(self._attempt, batch))
        else:
            errors = [self._attempt(delivery) for delivery in batch]
        finished_at = self.clock()
        if batch:
            with self.store.transaction() as tx:
                for delivery, error in zip(batch, errors, strict=True):
                    self._record(tx, delivery, error, finished_at)
        return len(batch)

    def close(self) -> None:
        """Stop the sending threads (after the last `deliver_due`)."""
        if self._senders is not None:
            self._senders.shutdown(wait=True)
            self._senders = None

    @staticmethod
    def _record(tx: Transaction, delivery: Delivery, error: str | None, finished_at: float) -> None:
        if error is None:
            tx.mark_delivered(delivery.id, finished_at)
        else:
            tx.record_failed_attempt(delivery.id, error, finished_at + backoff_s(delivery.attempts + 1))

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
