"""The simulator's background thread: opens due accounts, settles due payouts, delivers callbacks (in batches
sent at once by the sender's own threads, see delivery.py)."""

from __future__ import annotations

import logging
import threading

from app.tools.banksim.delivery import CallbackSender
from app.tools.banksim.operations import BankOperations

logger = logging.getLogger(__name__)

IDLE_WAIT_S = 1.0
_MIN_WAIT_S = 0.01
_DELIVERY_BATCHES_PER_ROUND = 5  # then due openings and payouts get their turn again


class BackgroundWorker:
    """Runs in one daemon thread; `start()` may be called once (a second call raises RuntimeError)."""

    def __init__(self, operations: BankOperations, sender: CallbackSender) -> None:
        self.operations = operations
        self.sender = sender
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bank-sim-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """New work was written: look at the database now instead of at the next tick."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout_s)
        if not self._thread.is_alive():
            self.sender.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self._run_round()
                wait_s = self._wait_s()
            except Exception:
                logger.exception("bank simulator background round failed")
                wait_s = IDLE_WAIT_S
            self._wake.wait(wait_s)

    def _run_round(self) -> None:
        self.operations.run_due()
        for _ in range(_DELIVERY_BATCHES_PER_ROUND):
            if self._stopping.is_set() or not self.sender.deliver_due():
                return

    def _wait_s(self) -> float:
        with self.operations.store.transaction() as tx:
            due_at = tx.next_due_at()
        if due_at is None:
            return IDLE_WAIT_S
        return min(max(due_at - self.operations.clock(), _MIN_WAIT_S), IDLE_WAIT_S)
