"""Banks as the admin sees them: endpoint, public-key fingerprint, account-opening limits and the live window.

Base URLs and keys come from the deployment (environment, instance key folder) and are read-only here.
The opening limits start as configured; an admin may override them (validated, audited), and the override
is what the opening job paces to from its next send on. Saving the limits also reschedules the bank's
waiting openings to the new pace: a job deferred far ahead under a lower limit (or spread over days by an
import) is pulled forward to the slot the new limits give it, never pushed back; the window of the bank's
last sends still guarantees no opening goes faster than the limit.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.crypto import sm3
from app.db.models import BankOpeningLimit, BankRateLimit, Job, VirtualAccount
from app.db.rate_limits import opening_state, window_state
from app.domain.contract_import import opening_slot
from app.domain.rate_limit import Limits, free_places, opened_today
from app.platform.config import BankEndpoint
from app.platform.errors import CunguanError, NotFound, ValidationError
from app.platform.runtime import Runtime

MAX_PER_SECOND = 1000
MAX_PER_DAY = 10_000_000
# How long one opening holds its worker slot: claim, the window, the bank's round trip, recording the answer
# (about 0.13 s median on this 2-core machine under load 10, bench/opening_pace.py); with the per-second limit it
# gives the sends a worker process keeps in flight for a bank (`opening_slots`).
OPENING_SEND_S = 0.25


@dataclass(frozen=True)
class BankRow:
    code: str
    name: str
    base_url: str
    key_fingerprint: str | None  # SM3 of the public key (DER), hex; None when the key file is missing
    per_second: int
    per_day: int
    configured: Limits
    override_by: str | None
    override_at: datetime | None
    free_now: int  # openings that could start at once now (of per_second)
    opened_today: int  # openings counted against today's (Shanghai) quota


@dataclass(frozen=True)
class SavedLimits:
    per_second: int
    per_day: int
    rescheduled: int  # waiting openings pulled forward to the new pace


def opening_limits(session: Session, endpoint: BankEndpoint) -> Limits:
    """The limits to pace `endpoint`'s account openings to: the admin's override, else the configured ones."""
    row = session.get(BankOpeningLimit, endpoint.code)
    if row is None:
        return Limits(endpoint.open_per_second, endpoint.open_per_day)
    return Limits(row.per_second, row.per_day)


def opening_slots(rt: Runtime, per_bank: int) -> dict[str, int]:
    """Per bank, how many of its jobs a worker process may run at once: `per_bank`, or more when its opening
    limit needs more sends in flight (limit x how long one send holds its slot)."""
    with rt.db.uow() as uow:
        limits = {code: opening_limits(uow.session, endpoint) for code, endpoint in rt.banks.items()}
    return {code: max(per_bank, math.ceil(limit.per_second * OPENING_SEND_S)) for code, limit in limits.items()}


def key_fingerprint(pem: bytes) -> str:
    """SM3 of the key's DER bytes (the base64 body of the PEM), as lowercase hex."""
    body = b"".join(line for line in pem.strip().splitlines() if not line.startswith(b"-----"))
    return sm3(base64.b64decode(body)).hex()


def _window(row: BankRateLimit | None, limits: Limits, now: datetime) -> tuple[int, int]:
    """(openings that could start now, openings today) of a bank's window, without taking anything."""
    state = window_state(row)
    return free_places(state, limits, now), opened_today(state, now)


def overview(rt: Runtime) -> list[BankRow]:
    now, rows = rt.clock(), []
    with rt.db.uow() as uow:
        for code, endpoint in sorted(rt.banks.items()):
            try:
                fingerprint: str | None = key_fingerprint(rt.keys.bank_public_key_pem(code))
            except (CunguanError, ValueError):
                fingerprint = None
            override = uow.session.get(BankOpeningLimit, code)
            limits = opening_limits(uow.session, endpoint)
            free_now, today = _window(uow.session.get(BankRateLimit, code), limits, now)
            rows.append(
                BankRow(
                    code=code,
                    name=endpoint.name,
                    base_url=endpoint.base_url,
                    key_fingerprint=fingerprint,
                    per_second=limits.per_second,
                    per_day=limits.per_day,
                    configured=Limits(endpoint.open_per_second, endpoint.open_per_day),
                    override_by=override.updated_by if override else None,
                    override_at=override.updated_at if override else None,
                    free_now=free_now,
                    opened_today=today,
                )
            )
    return rows


def _whole(text: str, label: str, ceiling: int) -> int:
    text = text.strip()
    if not text.isdigit() or not 1 <= int(text) <= ceiling:
        raise ValidationError(
            f"{label}须为 1 到 {ceiling:,} 之间的整数", code="LIMIT_INVALID", details={"field": label, "value": text}
        )
    return int(text)


def reschedule_openings(session: Session, bank_code: str, limits: Limits, now: datetime) -> int:
    """Pull the bank's waiting account openings forward to the pace `limits` allow; the number of jobs moved.

    The pending `open_virtual_account` jobs of the bank's requested accounts are taken in the order the
    workers would run them (run_after, id) and each gets the slot of its position in the queue at the new
    limits (`opening_slot`: at the pace the window achieves under them while today's quota lasts, then a day's
    quota from each Shanghai midnight), when that is earlier than its run_after. Nothing is postponed, and the
    order is kept. The schedule only spreads the jobs (workers do not spin deferring a queue all due at once);
    the window of the bank's last sends remains the guard against opening faster than the limits."""
    opened_today, pace = opening_state(session, bank_code, limits, now)
    waiting = session.execute(
        select(Job.id, Job.run_after)
        .join(VirtualAccount, VirtualAccount.id == Job.payload["virtual_account_id"].as_integer())
        .where(
            Job.kind == "open_virtual_account",
            Job.status == "pending",
            VirtualAccount.bank_code == bank_code,
            VirtualAccount.status == "requested",
        )
        .order_by(Job.run_after, Job.id)
    ).all()
    moves = []
    for position, (job_id, run_after) in enumerate(waiting):
        slot = opening_slot(limits, now, opened_today, position, pace)
        if slot < run_after:
            moves.append({"job_id": job_id, "new_run_after": slot})
    if moves:
        jobs = Job.__table__
        session.execute(
            update(jobs)
            .where(jobs.c.id == bindparam("job_id"), jobs.c.status == "pending")  # not one claimed meanwhile
            .values(run_after=bindparam("new_run_after", type_=jobs.c.run_after.type), updated_at=now),
            moves,
        )
    return len(moves)


def set_opening_limits(rt: Runtime, actor: str, bank_code: str, per_second_text: str, per_day_text: str) -> SavedLimits:
    """Override a bank's opening limits (per day at least per second), audited with before and after, and
    pull the bank's waiting openings forward to the new pace (`reschedule_openings`)."""
    if bank_code not in rt.banks:
        raise NotFound("未知银行", code="UNKNOWN_BANK", details={"bank": bank_code})
    per_second = _whole(per_second_text, "每秒开户上限", MAX_PER_SECOND)
    per_day = _whole(per_day_text, "每日开户上限", MAX_PER_DAY)
    if per_day < per_second:
        raise ValidationError("每日开户上限不能小于每秒开户上限", code="LIMIT_INVALID")
    with rt.db.uow() as uow:
        before = opening_limits(uow.session, rt.banks[bank_code])
        row = uow.session.get(BankOpeningLimit, bank_code, with_for_update=True)
        if row is None:
            row = BankOpeningLimit(bank_code=bank_code)
            uow.session.add(row)
        now = rt.clock()
        row.per_second, row.per_day, row.updated_by, row.updated_at = per_second, per_day, actor, now
        rescheduled = reschedule_openings(uow.session, bank_code, Limits(per_second, per_day), now)
        audit.append(
            uow.session,
            at=now,
            actor=actor,
            action="bank.opening_limits",
            subject=f"bank:{bank_code}",
            before={"per_second": before.per_second, "per_day": before.per_day},
            after={"per_second": per_second, "per_day": per_day},
            detail={"rescheduled_openings": rescheduled},
        )
        uow.commit()
    return SavedLimits(per_second, per_day, rescheduled)
