"""Who is using a signing link, and how much one client may ask of all links together.

A client is the address a request came from (Flask's `remote_addr`, behind the proxy as `CUNGUAN_PROXY_HOPS` says)
and its user agent. The audit keeps the address masked (IPv4 /24, IPv6 /48) and the user agent as the first 16 hex
digits of its SM3. Beside the per-link limits (`codes.py`), one address may have at most 20 codes sent and fail the
real-name check at most 30 times an hour, over all links: the events are rows of `signing_client_events` (the SM3
of the address, never the address), so every web process shares them, counted under a lock on the address
(PostgreSQL advisory lock; SQLite's single writer) so that a parallel burst cannot pass the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.crypto import sm3
from app.db.signing_models import SigningClientEvent
from app.deals.service import advisory_lock
from app.domain.pii_mask import mask_ip
from app.platform.errors import CunguanError

WINDOW = timedelta(hours=1)
CODE_SENT, CHECK_FAILED = "code", "check_failed"
PER_HOUR = {CODE_SENT: 20, CHECK_FAILED: 30}
REFUSALS = {
    CODE_SENT: "当前网络获取验证码过于频繁，请 1 小时后再试",
    CHECK_FAILED: "当前网络身份核验失败次数过多，请 1 小时后再试",
}


class ClientLimited(CunguanError):
    """The client's address has used up its hour; `message` is what the party reads."""

    code = "SIGNING_CLIENT_LIMITED"
    http_status = 429


@dataclass(frozen=True)
class Client:
    ip: str
    user_agent: str

    @property
    def key(self) -> str:
        return sm3(self.ip.encode()).hex()

    def audit_detail(self) -> dict[str, str]:
        """What the audit keeps of the client: the masked address and a hash of the user agent."""
        return {"ip": mask_ip(self.ip), "user_agent_sm3": sm3(self.user_agent.encode()).hex()[:16]}


def refusal(session: Session, client: Client, kind: str, now: datetime) -> ClientLimited | None:
    """Why the client may not do `kind` now, or None; takes the client's lock until the transaction ends, so the
    count stays true until `record` adds this one."""
    advisory_lock(session, f"signing:client:{client.key}")
    mine = SigningClientEvent.client == client.key  # only rows under this client's lock: no two requests race
    session.execute(delete(SigningClientEvent).where(mine, SigningClientEvent.at <= now - WINDOW))
    query = select(func.count()).where(mine, SigningClientEvent.kind == kind)
    if (session.scalar(query) or 0) >= PER_HOUR[kind]:
        return ClientLimited(REFUSALS[kind], details={"kind": kind})
    return None


def record(session: Session, client: Client, kind: str, now: datetime) -> None:
    session.add(SigningClientEvent(client=client.key, kind=kind, at=now))
