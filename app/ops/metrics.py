"""Prometheus metrics (text exposition format 0.0.4), computed from the database so that every web
process answers the same - except the PDF render histogram, which each process keeps in memory (kept by
`app.pdf.render`, read here: metrics only read)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from app.bank_inbox.store import inbox_backlog
from app.calendars.alerts import calendar_alerts
from app.db.ledger_models import LedgerTransfer
from app.db.models import BankNotification, BankRateLimit, Job, Payout, VirtualAccount
from app.db.reconciliation_models import ReconciliationException
from app.ledger.alerts import hot_account_figures
from app.ops.bank_reachability import bank_reachability
from app.pdf.render import PDF_RENDER_SECONDS
from app.platform.runtime import Runtime

OPENING_RATE_WINDOW = timedelta(minutes=5)


@dataclass
class Family:
    name: str
    kind: str  # counter | gauge | histogram
    help: str
    samples: list[tuple[str, dict[str, str], float | int]]

    def lines(self) -> list[str]:
        out = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        for suffix, labels, value in self.samples:
            out.append(f"{self.name}{suffix}{_labels(labels)} {_number(value)}")
        return out


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_label_value(str(value))}"' for key, value in labels.items()) + "}"


def _number(value: float | int) -> str:
    if isinstance(value, float):
        if value == float("inf"):
            return "+Inf"
        return repr(round(value, 6))
    return str(value)


def _gauge(name: str, help_text: str, rows: Iterable[tuple[dict[str, str], float | int]]) -> Family:
    return Family(name, "gauge", help_text, [("", labels, value) for labels, value in rows])


def _counter(name: str, help_text: str, rows: Iterable[tuple[dict[str, str], float | int]]) -> Family:
    return Family(name, "counter", help_text, [("", labels, value) for labels, value in rows])


def database_families(rt: Runtime) -> list[Family]:
    now = rt.clock()
    with rt.db.uow() as uow:
        session = uow.session
        callbacks = session.execute(
            select(
                BankNotification.bank_code,
                BankNotification.type,
                func.coalesce(BankNotification.outcome, "unprocessed"),
                func.count(),
            ).group_by(BankNotification.bank_code, BankNotification.type, BankNotification.outcome)
        ).all()
        payouts = session.execute(
            select(Payout.bank_code, Payout.purpose, Payout.status, func.count()).group_by(
                Payout.bank_code, Payout.purpose, Payout.status
            )
        ).all()
        jobs = session.execute(select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)).all()
        due = session.execute(
            select(Job.kind, func.count(), func.min(Job.run_after))
            .where(Job.status == "pending", Job.run_after <= now)
            .group_by(Job.kind)
        ).all()
        transfers = session.execute(select(LedgerTransfer.kind, func.count()).group_by(LedgerTransfer.kind)).all()
        opened = session.execute(
            select(VirtualAccount.bank_code, func.count())
            .where(VirtualAccount.opened_at.is_not(None))
            .group_by(VirtualAccount.bank_code)
        ).all()
        recent = dict(
            session.execute(
                select(VirtualAccount.bank_code, func.count())
                .where(VirtualAccount.opened_at >= now - OPENING_RATE_WINDOW)
                .group_by(VirtualAccount.bank_code)
            ).all()
        )
        buckets = session.execute(select(BankRateLimit.bank_code, BankRateLimit.day, BankRateLimit.day_count)).all()
        exceptions = session.execute(
            select(ReconciliationException.bank_code, ReconciliationException.kind, func.count())
            .where(ReconciliationException.resolved_at.is_(None))
            .group_by(ReconciliationException.bank_code, ReconciliationException.kind)
        ).all()
    backlog = inbox_backlog(rt)
    window_min = OPENING_RATE_WINDOW.total_seconds() / 60
    due_by_kind = {kind: (count, oldest) for kind, count, oldest in due}
    return [
        _gauge(
            "cunguan_bank_inbox_due",
            "Bank notifications waiting to be processed (inbox mode), and failed ones kept for review.",
            [({"state": "due"}, backlog.due), ({"state": "failed"}, backlog.failed)],
        ),
        _gauge(
            "cunguan_bank_inbox_oldest_due_age_seconds",
            "Seconds since the oldest unprocessed bank notification was received (0 when none waits): processing"
            " that stalls shows here, not as missing money.",
            [({}, max(0.0, (now - backlog.oldest_due_at).total_seconds()) if backlog.oldest_due_at else 0.0)],
        ),
        _counter(
            "cunguan_bank_callbacks_total",
            "Bank notifications received (inbox rows), by bank, type and processing outcome.",
            (({"bank": b, "type": t, "outcome": o}, n) for b, t, o, n in callbacks),
        ),
        _gauge(
            "cunguan_reconciliation_open_exceptions",
            "Reconciliation exceptions (差错) open until a person resolves them with a reason, by bank and kind.",
            (({"bank": b, "kind": k}, n) for b, k, n in exceptions),
        ),
        _gauge(
            "cunguan_payouts",
            "Payouts (releases and returns) by bank, purpose and status.",
            (({"bank": b, "purpose": p, "status": s}, n) for b, p, s, n in payouts),
        ),
        _gauge(
            "cunguan_jobs", "Jobs in the queue by kind and status.", (({"kind": k, "status": s}, n) for k, s, n in jobs)
        ),
        _gauge(
            "cunguan_jobs_due",
            "Pending jobs whose run_after has passed (queue depth), by kind.",
            (({"kind": kind}, count) for kind, (count, _) in sorted(due_by_kind.items())),
        ),
        _gauge(
            "cunguan_jobs_oldest_due_age_seconds",
            "Seconds since the oldest due pending job became due (0 when none is due).",
            [({}, max((max(0.0, (now - oldest).total_seconds()) for _, oldest in due_by_kind.values()), default=0.0))],
        ),
        _counter(
            "cunguan_ledger_transfers_total",
            "Ledger transfers written, by kind (single, pending, post_pending, void_pending).",
            (({"kind": kind}, n) for kind, n in sorted(transfers)),
        ),
        _counter(
            "cunguan_virtual_accounts_opened_total",
            "Virtual accounts the banks have opened, by bank.",
            (({"bank": bank}, n) for bank, n in sorted(opened)),
        ),
        _gauge(
            "cunguan_account_openings_per_minute",
            f"Accounts opened per minute, averaged over the last {window_min:g} minutes, by bank.",
            (({"bank": code}, round(recent.get(code, 0) / window_min, 3)) for code in sorted(rt.banks)),
        ),
        _gauge(
            "cunguan_bank_open_requests_today",
            "Account-opening requests sent to the bank on its current (Asia/Shanghai) day, from bank_rate_limits.",
            (({"bank": code, "day": day.isoformat()}, count) for code, day, count in sorted(buckets)),
        ),
        _gauge(
            "cunguan_bank_open_limit_per_day",
            "The bank's account-opening limit per day (configuration).",
            (({"bank": code}, endpoint.open_per_day) for code, endpoint in sorted(rt.banks.items())),
        ),
    ]


def hot_account_families(rt: Runtime) -> list[Family]:
    figures = hot_account_figures(rt)
    return [
        _gauge(
            "cunguan_ledger_hot_projected_balance_fen",
            "Balance of a hot account if every hold in flight posts.",
            (({"account": f.code}, f.projected_fen) for f in figures),
        ),
        _gauge(
            "cunguan_ledger_hot_buffered_entries",
            "Buffered postings not yet folded into the account.",
            (({"account": f.code}, f.buffered_entries) for f in figures),
        ),
        _gauge(
            "cunguan_ledger_hot_alert",
            "Whether a low-balance alert is open for the account (1) or not (0).",
            (({"account": f.code}, int(f.alert_open)) for f in figures),
        ),
    ]


def render_histogram_family() -> Family:
    buckets, count, total = PDF_RENDER_SECONDS.snapshot()
    samples: list[tuple[str, dict[str, str], float | int]] = [
        ("_bucket", {"le": _number(float(bound))}, n) for bound, n in buckets
    ]
    samples += [("_bucket", {"le": "+Inf"}, count), ("_sum", {}, total), ("_count", {}, count)]
    return Family(
        "cunguan_pdf_render_seconds",
        "histogram",
        "Time to lay out an agreement PDF (HTML to PDF). Per process: each gunicorn worker or worker process "
        "keeps its own histogram since it started, so a scrape sees the process that answered it (label by instance).",
        samples,
    )


def bank_reachability_families(rt: Runtime) -> list[Family]:
    """Whether each bank's server answers this process (alert on 0); not part of /readyz."""
    reach = bank_reachability(rt)
    return [
        _gauge(
            "cunguan_bank_reachable",
            "Whether the bank's server answered a plain GET of its base URL below 500 (1) or not (0), by bank."
            " Alert when 0 for several minutes; /readyz does not depend on it.",
            (({"bank": code}, int(result.ok)) for code, result in reach.items()),
        ),
        _gauge(
            "cunguan_bank_probe_latency_seconds",
            "Time the bank's server took to answer the reachability probe, by bank (only banks that answered).",
            (
                ({"bank": code}, result.latency_ms / 1000)
                for code, result in reach.items()
                if result.latency_ms is not None
            ),
        ),
    ]


def calendar_family(rt: Runtime) -> Family:
    counts = Counter((alert.kind, str(alert.year)) for alert in calendar_alerts(rt))
    return _gauge(
        "cunguan_calendar_alerts",
        "Open business-calendar alerts by kind and year: year_missing (a year without a complete holiday"
        " calendar starts soon), deadline_uncomputable (deals whose working-day deadline falls in it). Alert above 0.",
        (({"kind": kind, "year": year}, n) for (kind, year), n in sorted(counts.items())),
    )


def exposition(rt: Runtime) -> str:
    families = [
        *database_families(rt),
        *hot_account_families(rt),
        calendar_family(rt),
        *bank_reachability_families(rt),
        render_histogram_family(),
    ]
    return "\n".join(line for family in families for line in family.lines()) + "\n"
