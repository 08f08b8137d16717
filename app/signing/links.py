"""The parties' signing on the deal page: who has signed, and sending fresh links (the agent or ops) when a link
expired, was lost or was locked; and whether the bank may be asked to countersign yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.db.signing_models import SigningRequest
from app.deals.service import Actor, load_for
from app.domain.pii_mask import mask_phone
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime
from app.signing import codes
from app.signing.service import party_of, send_link

REISSUE_ROLES = ("agent", "ops")


@dataclass(frozen=True)
class PartyStatus:
    role_label: str
    status: str  # 已签署 / 待签署 / 链接已过期 / 链接已锁定
    signed_at: datetime | None


def requests_of(session: Session, deal_id: int) -> list[SigningRequest]:
    query = select(SigningRequest).where(SigningRequest.deal_id == deal_id).order_by(SigningRequest.position)
    return list(session.scalars(query))


def parties_pending(session: Session, deal_id: int) -> list[str]:
    """Roles that were asked to sign and have not (none when the deal has no party signing)."""
    return [request.role for request in requests_of(session, deal_id) if request.signed_at is None]


def _status(request: SigningRequest, now: datetime) -> str:
    if request.signed_at is not None:
        return "已签署"
    if request.failed_checks >= codes.CHECKS_PER_LINK:
        return "链接已锁定"
    return "链接已过期" if now >= request.expires_at else "待签署"


def signing_status(rt: Runtime, deal_id: int, product: str) -> list[PartyStatus]:
    """The deal's parties in signing order with where each stands; [] without party signing."""
    labels = dict(zip(("payer", "payee"), rt.products.get(product).parties, strict=True))
    now = rt.clock()
    with rt.db.uow() as uow:
        return [
            PartyStatus(labels[request.role], _status(request, now), request.signed_at)
            for request in requests_of(uow.session, deal_id)
        ]


def reissue(rt: Runtime, actor: Actor, deal_id: int) -> int:
    """New links (new tokens, 7 days, counters reset) for the parties who have not signed, sent by SMS; the old
    links stop working. Returns how many were sent."""
    if actor.role not in REISSUE_ROLES:
        raise ValidationError("只有经纪人或运营可以重新发送签署链接", code="ROLE_NOT_ALLOWED")
    now = rt.clock()
    with rt.db.uow() as uow:
        deal = load_for(uow.session, deal_id, actor)
        pending = [request for request in requests_of(uow.session, deal.id) if request.signed_at is None]
        if not pending:
            raise ValidationError("没有待签署的当事人", code="NOTHING_TO_SIGN")
        for request in pending:
            token = codes.new_token()
            request.token_hash, request.expires_at = codes.token_hash(token), now + codes.LINK_VALID
            request.verified_at, request.failed_checks = None, 0
            request.code_hash, request.code_expires_at, request.code_attempts = None, None, 0
            request.codes_sent, request.last_code_at = 0, None
            party = party_of(rt, deal, request.role)
            send_link(rt, deal, party, token)
            audit.append(
                uow.session,
                at=now,
                actor=actor.label,
                action="signing.reissued",
                subject=f"deal:{deal.deal_no}",
                detail={"role": request.role, "phone": mask_phone(party.phone or "")},
            )
        uow.commit()
        return len(pending)
