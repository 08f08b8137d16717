"""Group commit for the ledger: many callers, one transaction per batch (TigerBeetle's client batching).

Callers in any thread `submit` operations and block until the batch holding them has committed. A
committer thread takes whatever is queued (up to `max_batch`), runs it through the batch engine in one
transaction and hands each caller its own result. A failing operation fails only itself (or its linked
chain). If the transaction itself fails (a deadlock, two processes racing for the same transfer id), the
batch is retried; what retries cannot fix is reported to every caller of that batch, never lost silently.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime

from sqlalchemy.exc import DBAPIError

from app.db.base import utcnow
from app.db.session import Database
from app.domain.ledger_batch import LedgerOp, OpResult
from app.ledger import engine as ledger_engine

log = logging.getLogger("cunguan.ledger")

_Request = tuple[list[LedgerOp], Future[list[OpResult]]]


class LedgerBatcher:
    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 4000,
        committers: int = 1,
        attempts: int = 5,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.max_batch = max_batch
        self.attempts = attempts
        self.clock = clock
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._commit_loop, name=f"ledger-committer-{n}", daemon=True)
            for n in range(committers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, op: LedgerOp) -> OpResult:
        return self.submit_many([op])[0]

    def submit_many(self, ops: list[LedgerOp]) -> list[OpResult]:
        """Ops that are linked stay in one request, so a chain is never split across batches."""
        future: Future[list[OpResult]] = Future()
        self._queue.put((ops, future))
        return future.result()

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()

    def _commit_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            requests = [first]
            size = len(first[0])
            while size < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # let the loop finish after this batch
                    break
                requests.append(item)
                size += len(item[0])
            self._commit(requests)

    def _commit(self, requests: list[_Request]) -> None:
        ops = [op for request_ops, _ in requests for op in request_ops]
        try:
            results = self._run_with_retries(ops)
        except Exception as error:  # every caller of the batch learns of it; nothing half-written
            for _, future in requests:
                future.set_exception(error)
            return
        position = 0
        for request_ops, future in requests:
            future.set_result(results[position : position + len(request_ops)])
            position += len(request_ops)

    def _run_with_retries(self, ops: list[LedgerOp]) -> list[OpResult]:
        attempt = 1
        while True:
            try:
                with self.db.engine.begin() as connection:
                    return ledger_engine.execute(connection, ops, self.clock())
            except (DBAPIError, ledger_engine.ConcurrentPosting) as error:
                if attempt >= self.attempts:
                    raise
                log.warning("ledger batch retried", extra={"attempt": attempt, "error": str(error)[:200]})
                attempt += 1
