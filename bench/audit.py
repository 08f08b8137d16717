"""Benchmark: the audit chain's lock under concurrent batches on PostgreSQL.

Each of `--batches` threads runs one transaction like a bank inbox batch: `--rows` rows, each with `--work-ms` of
work (sleep, standing in for the ledger and the workflow) and one audit entry. Two ways of taking the chain's
advisory lock are compared:
- `at-commit` (what app.audit.log does since issue 21): entries are written unchained when the batch commits,
  no lock taken (`app.audit.chain` chains them afterwards; the name is kept for comparison with earlier runs);
- `at-first-entry` (what it did first): the lock taken at the first entry and held to the commit, so batches
  run one after another.
Reports the wall time of all batches, and checks the chain (hashes, MACs) afterwards.

Run: .venv/bin/python bench/audit.py --url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
     [--batches 4] [--rows 50] [--work-ms 2]
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.audit import log as audit  # noqa: E402
from app.audit.chain import CHAIN_LOCK_KEY, chain_pending  # noqa: E402
from app.audit.mac_key import mac_key  # noqa: E402
from app.crypto.keys import AUDIT_MAC_KEY_FILE  # noqa: E402
from app.db.audit_models import AuditEntry  # noqa: E402
from app.db.base import Base, utcnow  # noqa: E402
from app.db.session import Database  # noqa: E402
from app.domain.audit import verify_chain  # noqa: E402


def run_case(db: Database, batches: int, rows: int, work_s: float, lock_early: bool) -> float:
    def batch(index: int) -> None:
        with db.uow() as uow:
            for row in range(rows):
                if lock_early and row == 0:
                    uow.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
                time.sleep(work_s)
                audit.append(
                    uow.session, at=utcnow(), actor="bench", action="workflow.funds_arrived", subject=f"b{index}:{row}"
                )
            uow.commit()

    threads = [threading.Thread(target=batch, args=(i,)) for i in range(batches)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--work-ms", type=float, default=2.0)
    args = parser.parse_args()
    keys = Path(tempfile.mkdtemp())
    (keys / AUDIT_MAC_KEY_FILE).write_text(secrets.token_hex(32))
    mac_key.configure_from_folder(keys)
    schema = f"bench_audit_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in args.url else "?"
    db = Database(f"{args.url}{separator}options=-csearch_path%3D{schema}", pool_size=args.batches + 2)
    try:
        Base.metadata.create_all(db.engine)
        serial = args.batches * args.rows * args.work_ms / 1000
        print(f"{args.batches} batches × {args.rows} rows × {args.work_ms} ms work (all in a row: {serial:.2f} s)")
        for name, early in (("at-first-entry", True), ("at-commit", False)):
            seconds = run_case(db, args.batches, args.rows, args.work_ms / 1000, early)
            print(f"  lock {name:<15} {seconds:6.2f} s")
        with db.uow() as uow:  # entries are written unchained (issue 21): chain them, as a worker does
            while chain_pending(uow.session).read:
                pass
            uow.commit()
        with db.uow() as uow:
            entries = [
                audit.stored_entry(row) for row in uow.session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
            ]
        head, breaks = verify_chain(entries, mac_key.key())
        print(f"  chain: {head.count} entries, {len(breaks)} breaks")
    finally:
        db.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
