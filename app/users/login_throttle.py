"""Login throttling: after too many failed logins for one username from one address, that pair is locked
for a while. Failures are rows in the database, so every web process enforces the same lock. Every login,
failure and lockout is in the audit log, with the address."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from app.audit import log as audit
from app.db.models import LoginFailure
from app.platform.runtime import Runtime

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
LOCKED_MESSAGE = f"登录失败次数过多，该账号已被临时锁定，请 {int(WINDOW.total_seconds() // 60)} 分钟后再试"


def _key(username: str, ip: str) -> tuple[str, str]:
    return username.strip().lower()[:64], ip[:64]


def is_locked(rt: Runtime, username: str, ip: str, now: datetime | None = None) -> bool:
    """True when the pair has MAX_FAILURES failures within the last WINDOW."""
    name, address = _key(username, ip)
    since = (now or rt.clock()) - WINDOW
    with rt.db.uow() as uow:
        count = uow.session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.username == name, LoginFailure.ip == address, LoginFailure.failed_at > since)
        )
    return (count or 0) >= MAX_FAILURES


def record_failure(rt: Runtime, username: str, ip: str) -> None:
    """Store one failure (audited; the one that locks the pair is audited as the lockout); failures older
    than the window are pruned on the way."""
    name, address = _key(username, ip)
    now = rt.clock()
    with rt.db.uow() as uow:
        session = uow.session
        session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - WINDOW))
        session.add(LoginFailure(username=name, ip=address, failed_at=now))
        session.flush()
        failures = session.scalar(
            select(func.count())
            .select_from(LoginFailure)
            .where(LoginFailure.username == name, LoginFailure.ip == address)
        )
        detail = {"ip": address, "failures": failures}
        audit.append(
            session, at=now, actor=f"ip:{address}", action="auth.login_failed", subject=f"user:{name}", detail=detail
        )
        if failures == MAX_FAILURES:
            detail = {"ip": address, "minutes": int(WINDOW.total_seconds() // 60)}
            audit.append(session, at=now, actor="system", action="auth.lockout", subject=f"user:{name}", detail=detail)
        uow.commit()


def clear_failures(rt: Runtime, username: str, ip: str) -> None:
    """A successful login (audited) forgets the pair's earlier failures."""
    name, address = _key(username, ip)
    with rt.db.uow() as uow:
        uow.session.execute(delete(LoginFailure).where(LoginFailure.username == name, LoginFailure.ip == address))
        audit.append(
            uow.session,
            at=rt.clock(),
            actor=f"user:{name}",
            action="auth.login",
            subject=f"user:{name}",
            detail={"ip": address},
        )
        uow.commit()
