"""Periodic ledger upkeep run by every worker: fold hot-account buffers, void holds past their timeout."""

from __future__ import annotations

import logging

from app.ledger.repo import LedgerRepository
from app.platform.runtime import Runtime

log = logging.getLogger("cunguan.ledger")


def maintain(rt: Runtime) -> tuple[int, int]:
    """Returns (buffer rows folded, holds voided). Safe to run in several workers at once: folding locks
    the hot rows, and a hold voided by another worker in the meantime makes this run fail and retry later."""
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        folded = repo.fold_hot(rt.clock())
        voided = repo.void_expired(rt.clock())
        uow.commit()
    if folded or voided:
        log.info("ledger maintained", extra={"folded": folded, "voided": len(voided)})
    return folded, len(voided)
