"""Run by test_ledger_concurrency: posts linked chains in big batches until it is killed.

Usage: python ledger_crash_writer.py DATABASE_URL
Prints "begin N" before and "commit N" after each batch, flushed, so the test knows where it killed us.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.db.base import utcnow
from app.db.session import Database
from app.domain.ledger import TransferSpec
from app.domain.ledger_batch import LedgerOp
from app.ledger import engine as ledger_engine

CHAINS_PER_BATCH = 200


def chain(batch: int, n: int) -> list[LedgerOp]:
    """Arrival to the deal, release to the seller, fee: three transfers that stand or fall together."""
    now = utcnow()
    prefix = f"crash:{batch}:{n}"
    return [
        LedgerOp.post(
            TransferSpec(f"{prefix}:a", "bank_clearing:ceb", "custody:C", 100_00, "arrival"), now, linked=True
        ),
        LedgerOp.post(TransferSpec(f"{prefix}:r", "custody:C", "payable:C", 99_00, "release"), now, linked=True),
        LedgerOp.post(TransferSpec(f"{prefix}:f", "custody:C", "fee_income", 1_00, "fee"), now),
    ]


def main() -> None:
    db = Database(sys.argv[1])
    batch = 0
    while True:
        batch += 1
        print(f"begin {batch}", flush=True)
        ops = [op for n in range(CHAINS_PER_BATCH) for op in chain(batch, n)]
        with db.engine.begin() as connection:
            results = ledger_engine.execute(connection, ops, utcnow())
            ledger_engine.fold_hot(connection, utcnow())
        assert all(result.ok for result in results), [r for r in results if not r.ok][:3]
        print(f"commit {batch}", flush=True)


if __name__ == "__main__":
    main()
