"""What the sandbox runs the services with: the agreement signer, the clock, the log of the workers'
warnings and the people who act on the deals."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.db.models import Agreement, Deal
from app.deals import service as deals
from app.platform.runtime import Runtime


@dataclass
class SignOnce:
    """The sandbox's agreement signer (its vocabulary's `sign_agreement` signs with it): it renders and signs
    one PDF per product (each product has its own template); later deals of the product get a copy of that
    signed file."""

    rendered: int = 0
    signed: dict[str, Agreement] = field(default_factory=dict)

    def __call__(self, rt: Runtime, deal: Deal) -> Agreement:
        from app.agreements.service import sign_agreement

        first = self.signed.get(deal.product)
        if first is None:
            first = self.signed[deal.product] = sign_agreement(rt, deal)
            self.rendered += 1
            return first
        return Agreement(
            deal_id=deal.id,
            template=first.template,
            html=first.html,
            pdf=first.pdf,
            pdf_sm3=first.pdf_sm3,
            signed_at=rt.clock(),
        )


@dataclass
class SandboxClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance_to(self, when: datetime) -> None:
        self.now = max(self.now, when)

    def tick(self) -> None:
        self.now += timedelta(seconds=1)


class QuietLog(logging.Handler):
    """Keeps the warnings of the sandbox's workers and timers (they go nowhere else while simulating): a
    timer that could not fire says why here."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def reason(self, deal_id: int, since: int) -> str:
        for record in reversed(self.records[since:]):
            if getattr(record, "deal_id", None) == deal_id:
                return f"：{getattr(record, 'error', record.getMessage())}（{getattr(record, 'code', '')}）"
        return ""


@dataclass(frozen=True)
class People:
    agent: deals.Actor
    ops: deals.Actor
    approvers: tuple[deals.Actor, ...]
