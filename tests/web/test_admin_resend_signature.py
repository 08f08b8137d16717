"""重新发起签署: ops re-issue the bank's signing of a platform-signed agreement; the signed text is never
re-rendered, an agreement not yet signed by the platform or already fully signed is refused; audited."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import select

from app.agreements.countersign import COUNTERSIGN_JOB
from app.agreements.service import verify_agreement_pdf
from app.db.audit_models import AuditEntry
from app.db.models import Job
from app.deals import service as deals
from app.platform.runtime import Runtime
from app.queue.worker import run_one
from tests.conftest import csrf_token
from tests.factories import RESALE_FORM, actor, confirmed_deal, load_deal
from tests.integration.simulator_support import bank_over_http

Login = Callable[[str], FlaskClient]


def _resend(client: FlaskClient, deal_id: int, reason: str, follow: bool = True):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get("/login").text)
    data = {"csrf_token": token, "reason": reason}
    return client.post(f"/deals/{deal_id}/resend-signature", data=data, follow_redirects=follow)


def _countersign_jobs(rt: Runtime) -> list[Job]:
    with rt.db.uow() as uow:
        return list(uow.session.scalars(select(Job).where(Job.kind == COUNTERSIGN_JOB).order_by(Job.id)))


def _audit(rt: Runtime) -> list[AuditEntry]:
    with rt.db.uow() as uow:
        query = select(AuditEntry).where(AuditEntry.action == "deal.resend_signature")
        return list(uow.session.scalars(query))


def test_ops_resend_asks_the_bank_again_and_its_signature_is_added_to_the_stored_agreement(
    rt: Runtime, users: dict, login: Login, keys_dir: Path, tmp_path: Path
) -> None:
    deal_id = confirmed_deal(rt)
    platform_signed = load_deal(rt, deal_id).agreement
    assert platform_signed is not None and len(verify_agreement_pdf(rt, platform_signed.pdf)) == 1
    ops = login("ops")
    assert 'id="resend-signature-form"' in ops.get(f"/deals/{deal_id}").text
    assert "请填写操作原因" in _resend(ops, deal_id, "  ").text
    page = _resend(ops, deal_id, "银行签章服务超时，重新发起").text
    assert "已重新发起签署" in page and "重新发起签署，已请银行签章" in page, "flash and timeline"
    (entry,) = _audit(rt)
    (_queued_by_the_platform, again) = _countersign_jobs(rt)
    assert entry.before == {"pdf_sm3": platform_signed.pdf_sm3} and entry.after == {"job_id": again.id}
    assert entry.actor == "user:ops" and entry.detail["reason"] == "银行签章服务超时，重新发起"

    with bank_over_http(rt, keys_dir, tmp_path):
        while run_one(rt, "test-worker"):
            pass
    assert [job.status for job in _countersign_jobs(rt)] == ["done", "done"], "the second found it signed"
    agreement = load_deal(rt, deal_id).agreement
    assert agreement is not None and agreement.pdf.startswith(platform_signed.pdf), "signed as stored, not re-rendered"
    assert agreement.html == platform_signed.html
    platform, bank = verify_agreement_pdf(rt, agreement.pdf)
    assert platform.valid and bank.valid and bank.covers_whole_file and "ceb" in (bank.signer_subject or "")

    assert "协议已完成全部签署，无需重新发起" in _resend(ops, deal_id, "再来一次").text
    assert load_deal(rt, deal_id).agreement.pdf == agreement.pdf and len(_audit(rt)) == 1  # type: ignore[union-attr]
    assert len(_countersign_jobs(rt)) == 2


def test_resend_is_refused_before_the_platform_signed_and_for_other_roles(
    rt: Runtime, users: dict, login: Login
) -> None:
    unsigned = deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", RESALE_FORM)
    ops = login("ops")
    assert 'id="resend-signature-form"' not in ops.get(f"/deals/{unsigned}").text
    assert "协议尚未由平台签署" in _resend(ops, unsigned, "试试").text
    signed = confirmed_deal(rt)
    assert _resend(login("finance"), signed, "越权", follow=False).status_code == 403
    assert _resend(login("agent"), signed, "越权", follow=False).status_code == 403
    assert _audit(rt) == []
