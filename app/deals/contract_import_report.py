"""What a contract import reports: rows read, imported and skipped, bad rows (row, field, reason), how long the
bank's queue of account openings will take; and its one audit entry."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.audit import log as audit
from app.domain.contract_import import BadRow, OpeningEstimate
from app.platform.runtime import Runtime


@dataclass
class ImportResult:
    source_name: str
    encoding: str = ""
    rows: int = 0  # data rows read (blank lines not counted)
    imported: int = 0
    already_imported: int = 0  # imported by an earlier run: skipped
    bad_rows: list[BadRow] = field(default_factory=list)
    openings: list[OpeningEstimate] = field(default_factory=list)

    @property
    def bad_row_count(self) -> int:
        return len({bad.row_no for bad in self.bad_rows})


def audit_import(rt: Runtime, actor: str, result: ImportResult) -> None:
    """One audit entry for the whole import (in a transaction of its own, after the last batch)."""
    with rt.db.uow() as uow:
        audit.append(
            uow.session,
            at=rt.clock(),
            actor=actor,
            action="contracts.import",
            subject=f"file:{result.source_name}",
            detail={
                "rows": result.rows,
                "imported": result.imported,
                "already_imported": result.already_imported,
                "bad_rows": result.bad_row_count,
            },
        )
        uow.commit()
