"""Login throttling, per account across all addresses and per address across all accounts. Each attempt is
counted before its password is checked, under a lock (a PostgreSQL advisory lock per account and per address;
SQLite's single writer), so a parallel burst cannot pass more checks than the limit; a success forgets the
account's earlier attempts. Every login, failure and lockout is in the audit log, with the address."""

from __future__ import annotations

import zlib
from datetime import timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.db.models import LoginFailure
from app.platform.runtime import Runtime

MAX_FAILURES = 5  # per account, from any address
MAX_FAILURES_PER_ADDRESS = 20  # per address, over any accounts (an office behind one NAT shares it)
WINDOW = timedelta(minutes=15)
LOCKED_MESSAGE = f"登录失败次数过多，该账号已被临时锁定，请 {int(WINDOW.total_seconds() // 60)} 分钟后再试"


def _key(username: str, ip: str) -> tuple[str, str]:
    return username.strip().lower()[:64], ip[:64]


def _lock(session: Session, *keys: str) -> None:
    """Serialise the attempts on these keys until commit (PostgreSQL; SQLite transactions already are)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in keys:  # always account first, then address: no lock cycle
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(key.encode()) - 2**31})


def _count(session: Session, *where: object) -> int:
    return session.scalar(select(func.count()).select_from(LoginFailure).where(*where)) or 0  # type: ignore[arg-type]


def begin_attempt(rt: Runtime, username: str, ip: str) -> bool:
    """Count one attempt before its password is checked; False (nothing counted) when the account or the
    address is locked. The attempt stays counted as a failure unless `succeeded` is called."""
    name, address = _key(username, ip)
    now = rt.clock()
    with rt.db.uow() as uow:
        session = uow.session
        _lock(session, f"login:user:{name}", f"login:ip:{address}")
        session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= now - WINDOW))
        if (
            _count(session, LoginFailure.username == name) >= MAX_FAILURES
            or _count(session, LoginFailure.ip == address) >= MAX_FAILURES_PER_ADDRESS
        ):
            uow.commit()
            return False
        session.add(LoginFailure(username=name, ip=address, failed_at=now))
        uow.commit()
        return True


def failed(rt: Runtime, username: str, ip: str) -> None:
    """Audit a failed attempt (already counted); the one that locks the account is audited as the lockout."""
    name, address = _key(username, ip)
    now = rt.clock()
    with rt.db.uow() as uow:
        session = uow.session
        failures = _count(session, LoginFailure.username == name)
        detail = {"ip": address, "failures": failures}
        audit.append(
            session, at=now, actor=f"ip:{address}", action="auth.login_failed", subject=f"user:{name}", detail=detail
        )
        if failures == MAX_FAILURES:
            detail = {"ip": address, "minutes": int(WINDOW.total_seconds() // 60)}
            audit.append(session, at=now, actor="system", action="auth.lockout", subject=f"user:{name}", detail=detail)
        uow.commit()


def succeeded(rt: Runtime, username: str, ip: str) -> None:
    """A successful login (audited) forgets the account's earlier attempts."""
    name, address = _key(username, ip)
    with rt.db.uow() as uow:
        uow.session.execute(delete(LoginFailure).where(LoginFailure.username == name))
        audit.append(
            uow.session,
            at=rt.clock(),
            actor=f"user:{name}",
            action="auth.login",
            subject=f"user:{name}",
            detail={"ip": address},
        )
        uow.commit()
