"""Where the account openings of imported contracts stand, per bank: how many of the imported accounts the bank
has opened, how many openings are still queued, the pace of the last minute, and when the last queued one will
go (the console's banks page, `flask contracts openings`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.banks.settings import opening_limits
from app.db.models import ImportedContract, Job, VirtualAccount
from app.db.rate_limits import opening_state
from app.domain.contract_import import opening_slot
from app.platform.runtime import Runtime

RECENT_S = 60  # the pace shown is the openings of the last minute


@dataclass(frozen=True)
class OpeningProgress:
    bank_code: str
    bank_name: str
    imported: int  # accounts of imported contracts at this bank
    opened: int  # of them, opened by the bank
    queued: int  # opening requests still waiting at this bank (imported or not)
    recent_per_s: float  # accounts the bank opened per second over the last minute
    pace_per_s: float  # what the bank's window achieves (the limit less the margin and the way to the bank)
    last_at: datetime | None  # when the last queued request goes at the last minute's pace (None: none queued)

    @property
    def share(self) -> float:
        return self.opened / self.imported if self.imported else 1.0


def opening_progress(rt: Runtime) -> list[OpeningProgress]:
    """Every configured bank with imported accounts or queued openings, in code order."""
    now = rt.clock()
    with rt.db.uow() as uow:
        imported = _imported(uow.session)
        queued = dict(
            uow.session.execute(
                select(Job.bank_code, func.count())
                .where(Job.kind == "open_virtual_account", Job.status.in_(("pending", "running")))
                .group_by(Job.bank_code)
            ).all()
        )
        recent = dict(
            uow.session.execute(
                select(VirtualAccount.bank_code, func.count())
                .where(VirtualAccount.opened_at > now - timedelta(seconds=RECENT_S), VirtualAccount.opened_at <= now)
                .group_by(VirtualAccount.bank_code)
            ).all()
        )
        rows = []
        for code in sorted(set(imported) | {code for code, count in queued.items() if code and count}):
            if code not in rt.banks:
                continue
            rows.append(_progress(rt, uow.session, code, imported.get(code, (0, 0)), queued.get(code, 0), now, recent))
    return rows


def _imported(session: Session) -> dict[str, tuple[int, int]]:
    """Per bank: (accounts of imported contracts, of them opened)."""
    counts = session.execute(
        select(
            VirtualAccount.bank_code,
            func.count(),
            func.count(VirtualAccount.opened_at),
        )
        .join(ImportedContract, ImportedContract.deal_id == VirtualAccount.deal_id)
        .group_by(VirtualAccount.bank_code)
    ).all()
    return {code: (total, opened) for code, total, opened in counts}


def _progress(
    rt: Runtime,
    session: Session,
    code: str,
    imported: tuple[int, int],
    queued: int,
    now: datetime,
    recent: dict[str, int],
) -> OpeningProgress:
    limits = opening_limits(session, rt.banks[code])
    opened_today, pace = opening_state(session, code, limits, now)
    recent_per_s = recent.get(code, 0) / RECENT_S
    going_at = min(pace, recent_per_s) if recent_per_s else pace  # the workers' own pace once they are at it
    last_at = opening_slot(limits, now, opened_today, queued - 1, going_at) if queued else None
    return OpeningProgress(code, rt.banks[code].name, *imported, queued, recent_per_s, pace, last_at)
