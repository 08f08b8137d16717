"""短信模拟 for ops and admins: the SMS simulator's outbox (`<instance>/sms_outbox.jsonl`), newest first, with the
masked phone and the message as sent (signing links and one-time codes: it is a simulator). Only while the
simulator is in use: with an SMS gateway (`CUNGUAN_SMS_URL`, required in production) the page is 404 and out of
the menu."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from flask import abort
from flask_admin import expose

from app.admin.base import RoleView
from app.domain.pii_mask import mask_phone
from app.signing.sms import SimulatedSms
from app.web.access import runtime

SHOWN = 200  # the newest messages listed
LINK = re.compile(r"https?://\S+/sign/[A-Za-z0-9_-]+")
CODE = re.compile(r"验证码为 (\d{6})")


@dataclass(frozen=True)
class OutboxRow:
    at: datetime
    phone: str  # masked
    text: str
    link: str | None
    code: str | None


def _simulator() -> SimulatedSms | None:
    sms = runtime().sms
    return sms if isinstance(sms, SimulatedSms) else None


def outbox_rows(sms: SimulatedSms) -> list[OutboxRow]:
    rows = []
    for message in reversed(sms.messages()[-SHOWN:]):
        link, code = LINK.search(message["text"]), CODE.search(message["text"])
        rows.append(
            OutboxRow(
                datetime.fromisoformat(message["at"]),
                mask_phone(message["phone"]),
                message["text"],
                link.group(0) if link else None,
                code.group(1) if code else None,
            )
        )
    return rows


class SmsOutboxView(RoleView):
    read_roles = frozenset({"ops", "admin"})

    def is_accessible(self) -> bool:
        return super().is_accessible() and _simulator() is not None

    @expose("/")
    def index(self) -> str:
        sms = _simulator()
        if sms is None:
            abort(404)
        return self.render("admin/cunguan/sms_outbox.html", rows=outbox_rows(sms), outbox=sms.outbox)  # type: ignore[no-any-return]
