"""What staff see of the hot accounts: open low-balance alerts (the admin banner) and per-account figures
(the metrics endpoint). Read from the database, so every process shows the same."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from app.db.ledger_models import LedgerAccount, LedgerAlert, LedgerHotEntry
from app.domain.ledger_batch import AccountState
from app.ledger import engine as ledger_engine
from app.platform.runtime import Runtime


@dataclass(frozen=True)
class AlertView:
    account_code: str
    account_name: str
    projected_fen: int
    threshold_fen: int
    raised_at: datetime


@dataclass(frozen=True)
class HotAccountFigures:
    code: str
    projected_fen: int
    buffered_entries: int
    alert_open: bool


def open_alerts(rt: Runtime) -> list[AlertView]:
    with rt.db.uow() as uow:
        rows = uow.session.execute(
            select(LedgerAccount.code, LedgerAccount.name, LedgerAlert)
            .join(LedgerAlert.account)
            .where(LedgerAlert.cleared_at.is_(None))
            .order_by(LedgerAlert.raised_at)
        ).all()
        return [AlertView(code, name, a.projected_fen, a.threshold_fen, a.raised_at) for code, name, a in rows]


def hot_account_figures(rt: Runtime) -> list[HotAccountFigures]:
    with rt.db.uow() as uow:
        session = uow.session
        accounts = session.scalars(
            select(LedgerAccount).where(LedgerAccount.hot.is_(True)).order_by(LedgerAccount.code)
        )
        buffered = dict(
            session.execute(select(LedgerHotEntry.account_id, func.count()).group_by(LedgerHotEntry.account_id)).all()
        )
        alerting = set(session.scalars(select(LedgerAlert.account_id).where(LedgerAlert.cleared_at.is_(None))))
        figures = []
        for account in accounts:
            state = AccountState(
                account.id,
                account.code,
                account.type,
                account.debits_must_not_exceed_credits,
                account.credits_must_not_exceed_debits,
                True,
                account.alert_below_fen,
            )
            state.set_totals(ledger_engine.exact_totals(session.connection(), account.id))
            figures.append(
                HotAccountFigures(
                    account.code, state.projected_fen(), buffered.get(account.id, 0), account.id in alerting
                )
            )
        return figures
