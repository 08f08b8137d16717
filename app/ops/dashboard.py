"""The operations dashboard's figures, read from the database on every request: custody and deal counts from
the running totals the database keeps (`app.figures.totals`), the rest computed.

Days are calendar days in Asia/Shanghai. Inbound (入金) is money the banks received for us: posted
transfers debiting a bank clearing account; outbound (出金) is money they paid out for us: posted
transfers crediting one. Balances are exact: hot-account postings still in the buffer are included.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, aliased

from app.calendars.alerts import CalendarAlert, calendar_alerts
from app.db.ledger_models import LedgerAccount, LedgerTransfer
from app.db.models import Job, Payout, VirtualAccount
from app.domain.labels import product_label
from app.domain.timezone import SHANGHAI
from app.figures import totals
from app.ledger.alerts import AlertView, open_alerts
from app.payouts.status import PayoutStatus
from app.platform.errors import CunguanError
from app.platform.runtime import Runtime

DAYS = 14
OPENING_HOURS = 24
CLEARING_PREFIX = "bank_clearing:"
CUSTODY_PREFIX = "custody:"  # a deal's custody account
POSTED = ("single", "post_pending")
JOB_COUNT_CAP = 10_000  # the home page counts jobs up to this many per figure
# a guarantee frozen or released at the bank: no money came in or went out; freezes are counted apart
FREEZE, UNFREEZE = "freeze", "unfreeze"


@dataclass(frozen=True)
class DayFlow:
    day: date
    inbound_count: int = 0
    inbound_fen: int = 0
    inbound_direct: int = 0  # credited straight to a deal's custody account (the rest went to suspense)
    outbound_count: int = 0
    outbound_fen: int = 0
    payouts_succeeded: int = 0
    payouts_failed: int = 0
    frozen_count: int = 0  # guarantees frozen at the bank: held for deals, not money that came in
    frozen_fen: int = 0


@dataclass(frozen=True)
class Share:
    key: str
    label: str
    value: int


@dataclass(frozen=True)
class JobFigures:
    pending: int
    running: int
    failing: int  # pending again after at least one failed attempt
    dead: int
    opening_queue: int  # account openings waiting (paced per bank)

    def shown(self, figure: str) -> str:
        """The figure for people: counted up to JOB_COUNT_CAP, beyond it "10,000+"."""
        value = int(getattr(self, figure))
        return f"{JOB_COUNT_CAP:,}+" if value > JOB_COUNT_CAP else str(value)


@dataclass(frozen=True)
class OpeningRate:
    """Accounts a bank opened in each of the last hours (oldest first), by `virtual_accounts.opened_at`."""

    bank_code: str
    label: str
    per_hour: list[int]


@dataclass(frozen=True)
class Dashboard:
    days: list[DayFlow]
    custody_by_city: list[Share]
    custody_by_bank: list[Share]
    custody_by_product: list[Share]
    deals_by_state: list[Share]
    jobs: JobFigures
    alerts: list[AlertView]
    hours: list[datetime]  # the starts of the opening-rate hours (UTC)
    openings: list[OpeningRate]
    calendar_alerts: list[CalendarAlert]

    @property
    def custody_total_fen(self) -> int:
        return sum(share.value for share in self.custody_by_city)

    @property
    def payout_success_rate(self) -> float | None:
        """Succeeded / finished payouts over the whole window; None when none finished."""
        return rate(sum(d.payouts_succeeded for d in self.days), sum(d.payouts_failed for d in self.days))

    @property
    def inbound_direct_rate(self) -> float | None:
        direct = sum(d.inbound_direct for d in self.days)
        return rate(direct, sum(d.inbound_count for d in self.days) - direct)


def rate(good: int, bad: int) -> float | None:
    return None if good + bad == 0 else good / (good + bad)


def window(today: date, days: int = DAYS) -> tuple[list[date], datetime]:
    """The last `days` Shanghai days ending today, and the instant the first one starts."""
    first = today - timedelta(days=days - 1)
    return [first + timedelta(days=n) for n in range(days)], datetime.combine(first, time.min, tzinfo=SHANGHAI)


def compute(rt: Runtime, now: datetime | None = None) -> Dashboard:
    now = now or rt.clock()
    days, start = window(now.astimezone(SHANGHAI).date())
    with rt.db.uow() as uow:
        session = uow.session
        flows = _flows(session, days, start)
        kept = totals.read(session.connection())
        by_city, by_bank, by_product = _custody(rt, kept)
        states = _deals_by_state(rt, kept)
        jobs = _jobs(session)
        hours, openings = _openings(rt, session, now)
    return Dashboard(
        flows, by_city, by_bank, by_product, states, jobs, open_alerts(rt), hours, openings, calendar_alerts(rt, now)
    )


def _local_day(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()


def _flows(session: Session, days: list[date], start: datetime) -> list[DayFlow]:
    debit, credit = aliased(LedgerAccount), aliased(LedgerAccount)
    rows = session.execute(
        select(LedgerTransfer.created_at, LedgerTransfer.amount_fen, LedgerTransfer.code, debit.code, credit.code)
        .join(debit, LedgerTransfer.debit_account_id == debit.id)
        .join(credit, LedgerTransfer.credit_account_id == credit.id)
        .where(
            LedgerTransfer.created_at >= start,
            LedgerTransfer.kind.in_(POSTED),
            LedgerTransfer.code != UNFREEZE,
            debit.code.startswith(CLEARING_PREFIX) | credit.code.startswith(CLEARING_PREFIX),
        )
    ).all()
    sums: dict[date, Counter[str]] = defaultdict(Counter)
    for created_at, amount, code, debit_code, credit_code in rows:
        day = sums[_local_day(created_at)]
        if code == FREEZE:  # counted apart: no money came in
            day["frozen_count"] += 1
            day["frozen_fen"] += amount
        elif debit_code.startswith(CLEARING_PREFIX):
            day["inbound_count"] += 1
            day["inbound_fen"] += amount
            day["inbound_direct"] += credit_code.startswith(CUSTODY_PREFIX)
        else:
            day["outbound_count"] += 1
            day["outbound_fen"] += amount
    payouts = session.execute(
        select(Payout.updated_at, Payout.status).where(
            Payout.updated_at >= start, Payout.status.in_((PayoutStatus.SUCCEEDED, PayoutStatus.FAILED))
        )
    ).all()
    for updated_at, status in payouts:
        sums[_local_day(updated_at)][f"payouts_{status}"] += 1
    return [DayFlow(day, **sums.get(day, Counter())) for day in days]


def _custody(rt: Runtime, kept: totals.Figures) -> tuple[list[Share], list[Share], list[Share]]:
    """Exact posted balances of the deals' custody accounts by city, by bank and by product, largest first:
    from the running totals (`app.figures.totals`), a handful of rows however large the book."""
    by_city: Counter[str] = Counter()
    by_bank: Counter[str] = Counter()
    by_product: Counter[str] = Counter()
    for key, balance in kept.custody.items():
        by_city[key.city_code] += balance
        by_bank[key.bank_code] += balance
        by_product[key.product] += balance
    return (
        _shares(by_city, lambda code: _city_name(rt, code)),
        _shares(by_bank, lambda code: _bank_name(rt, code)),
        _shares(by_product, lambda code: product_label(code, rt.products)),
    )


def _shares(totals: Counter[str], label: Callable[[str], str]) -> list[Share]:
    return [Share(key, label(key), fen) for key, fen in totals.most_common() if fen]


def _deals_by_state(rt: Runtime, kept: totals.Figures) -> list[Share]:
    """Deals per product and state (from the running totals), each state in its own product's words (a resale
    deal's 已入金 is not another product's)."""
    counts: Counter[str] = Counter()
    labels: dict[str, str] = {}
    for at, count in kept.deals.items():
        key = f"{at.product}:{at.state}"
        counts[key] += count
        try:
            state_label = rt.workflow(at.workflow_id, at.workflow_version).label(at.state)
        except CunguanError:
            state_label = at.state
        labels.setdefault(key, f"{product_label(at.product, rt.products)} · {state_label}")
    return [Share(key, labels[key], count) for key, count in counts.most_common() if count]


def hour_window(now: datetime, hours: int = OPENING_HOURS) -> list[datetime]:
    """The starts of the last `hours` whole hours, the current (partial) one last."""
    current = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return [current - timedelta(hours=hours - 1 - n) for n in range(hours)]


def _openings(rt: Runtime, session: Session, now: datetime) -> tuple[list[datetime], list[OpeningRate]]:
    """Account openings per hour and bank over the last 24 hours; every configured bank has a series."""
    hours = hour_window(now)
    rows = session.execute(
        select(VirtualAccount.bank_code, VirtualAccount.opened_at).where(
            VirtualAccount.opened_at >= hours[0], VirtualAccount.opened_at <= now
        )
    ).all()
    counts: dict[str, list[int]] = {code: [0] * len(hours) for code in sorted(rt.banks)}
    for bank_code, opened_at in rows:
        slot = int((opened_at - hours[0]).total_seconds() // 3600)
        counts.setdefault(bank_code, [0] * len(hours))[slot] += 1
    return hours, [OpeningRate(code, _bank_name(rt, code), per_hour) for code, per_hour in counts.items()]


def _counted(session: Session, *where: ColumnElement[bool]) -> int:
    """How many jobs match, counted up to JOB_COUNT_CAP + 1 along an index (a queue of 100,000 openings costs what
    one of 10,000 does); more than the cap is shown as "10,000+"."""
    matching = select(Job.id).where(*where).limit(JOB_COUNT_CAP + 1).subquery()
    return session.scalar(select(func.count()).select_from(matching)) or 0


def _jobs(session: Session) -> JobFigures:
    return JobFigures(
        pending=_counted(session, Job.status == "pending"),
        running=_counted(session, Job.status == "running"),
        failing=_counted(session, Job.status == "pending", Job.attempts > 0),
        dead=_counted(session, Job.status == "dead"),
        opening_queue=_counted(session, Job.status.in_(("pending", "running")), Job.kind == "open_virtual_account"),
    )


def _city_name(rt: Runtime, code: str) -> str:
    try:
        return rt.cities.get(code).name
    except CunguanError:
        return code


def _bank_name(rt: Runtime, code: str) -> str:
    endpoint = rt.banks.get(code)
    return endpoint.name if endpoint is not None else code
