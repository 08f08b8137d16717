"""Read what a deal's evidence pack holds from the database and the key folder, in one transaction."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from app.audit.chain import chain as chain_audit
from app.crypto.keys import bank_certificate_path
from app.db.audit_models import AuditEntry
from app.db.config_models import CityConfigSnapshot
from app.db.ledger_models import LedgerAccount, LedgerTransfer
from app.db.models import Agreement, BankNotification, Deal
from app.evidence.members import CRL_SUFFIX, DealEvidence, Notification, Parties, safe_name, utc_text
from app.pki.store import crl_path, root_certificate_path
from app.platform.errors import Busy, NotFound
from app.platform.runtime import Runtime
from app.seals.issue import bank_seal_path, platform_seal_path


def _deal_summary(deal: Deal) -> dict[str, Any]:
    account = deal.virtual_account
    return {
        "id": deal.id,
        "deal_no": deal.deal_no,
        "city_code": deal.city_code,
        "product": deal.product,
        "bank_code": deal.bank_code,
        "workflow_id": deal.workflow_id,
        "workflow_version": deal.workflow_version,
        "agreement_template": deal.agreement_template,
        "city_config_sha256": deal.city_config_sha256,
        "state": deal.state,
        "price_fen": deal.price_fen,
        "custody_amount_fen": deal.custody_amount_fen,
        "virtual_account": None if account is None else {"bank_code": account.bank_code, "no": account.account_no},
        "frozen_at": utc_text(deal.frozen_at),
        "created_at": utc_text(deal.created_at),
    }


def _agreement_summary(agreement: Agreement | None) -> dict[str, Any] | None:
    if agreement is None:
        return None
    return {"template": agreement.template, "pdf_sm3": agreement.pdf_sm3, "signed_at": utc_text(agreement.signed_at)}


def _city_config(snapshot: CityConfigSnapshot | None) -> dict[str, Any] | None:
    """The resolved config the deal pinned, with the version of each layer it was made of."""
    if snapshot is None:
        return None
    layers, data = snapshot.layers, snapshot.data
    return {"sha256": snapshot.sha256, "city_code": snapshot.city_code, "layers": layers, "data": data}


def _parties(deal: Deal) -> Parties:
    return Parties(
        deal.buyer_name,
        deal.buyer_id_number,
        deal.buyer_phone,
        deal.buyer_bank_account,
        deal.seller_name,
        deal.seller_id_number,
        deal.seller_phone,
        deal.seller_bank_account,
    )


def _audit(session: Session, deal: Deal) -> list[dict[str, Any]]:
    subjects = [f"deal:{deal.deal_no}", *(f"payout:{payout.payout_id}" for payout in deal.payouts)]
    of_deal = AuditEntry.subject.in_(subjects)
    if session.scalar(select(AuditEntry.id).where(of_deal, AuditEntry.seq.is_(None)).limit(1)) is not None:
        # another process was chaining as the build asked: a pack never leaves an entry out
        raise Busy("本存管单的审计记录尚在入链，请稍后再生成证据包", code="AUDIT_NOT_CHAINED")
    chained = select(AuditEntry).where(of_deal, AuditEntry.seq.is_not(None))
    return [
        {
            "id": row.id,
            "seq": row.seq,
            "at": utc_text(row.at),
            "actor": row.actor,
            "action": row.action,
            "subject": row.subject,
            "before": row.before,
            "after": row.after,
            "detail": row.detail,
            "writer": row.writer,
            "writer_seq": row.writer_seq,
            "prev_hash": row.prev_hash,
            "hash": row.hash,
            "mac": row.mac,
        }
        for row in session.scalars(chained.order_by(AuditEntry.seq))
    ]


def _transfers(session: Session, deal_id: int) -> list[dict[str, Any]]:
    debit, credit = aliased(LedgerAccount), aliased(LedgerAccount)
    rows = session.execute(
        select(LedgerTransfer, debit.code, credit.code)
        .join(debit, LedgerTransfer.debit_account_id == debit.id)
        .join(credit, LedgerTransfer.credit_account_id == credit.id)
        .where(LedgerTransfer.deal_id == deal_id)
        .order_by(LedgerTransfer.created_at, LedgerTransfer.id)
    )
    return [
        {
            "id": transfer.id,
            "debit_account": debit_code,
            "credit_account": credit_code,
            "amount_fen": transfer.amount_fen,
            "code": transfer.code,
            "kind": transfer.kind,
            "pending_id": transfer.pending_id,
            "created_at": utc_text(transfer.created_at),
        }
        for transfer, debit_code, credit_code in rows
    ]


def _notifications(session: Session, deal: Deal) -> list[Notification]:
    """The deal's bank notifications: those of its virtual account and the results of its payouts (by the
    `payout_id` kept beside the body since 0047)."""
    account = deal.virtual_account
    concerns = []
    if account is not None and account.account_no:
        concerns.append(
            (BankNotification.bank_code == account.bank_code) & (BankNotification.account_no == account.account_no)
        )
    payouts = [payout.payout_id for payout in deal.payouts]
    if payouts:
        concerns.append(BankNotification.payout_id.in_(payouts))
    if not concerns:
        return []
    rows = list(session.scalars(select(BankNotification).where(or_(*concerns)).order_by(BankNotification.id)))
    rows = sorted([*rows, *_results_before_0047(session, deal, set(payouts))], key=lambda row: row.id)
    return [
        Notification(
            row.bank_code,
            row.notification_id,
            row.type,
            row.raw_body.encode("utf-8"),
            row.received_at,
            row.processed_at,
            row.outcome,
            row.signature,
        )
        for row in rows
    ]


def _results_before_0047(session: Session, deal: Deal, payouts: set[str]) -> list[BankNotification]:
    """Payout results stored before `payout_id` was kept beside the body: the bank's results since the deal's first
    payout, read (decrypted) to find the deal's own. None once every row has its payout id."""
    if not payouts:
        return []
    since = min(payout.created_at for payout in deal.payouts)
    candidates = session.scalars(
        select(BankNotification).where(
            BankNotification.bank_code == deal.bank_code,
            BankNotification.type == "payout_result",
            BankNotification.payout_id.is_(None),
            BankNotification.received_at >= since,
        )
    )
    found = []
    for row in candidates:
        try:
            payout_id = json.loads(row.raw_body).get("payout_id")
        except ValueError:
            continue
        if payout_id in payouts:
            found.append(row)
    return found


def _certificates(rt: Runtime, bank_codes: set[str]) -> dict[str, bytes]:
    """The certificates and CRL an offline verifier needs: the platform's seal certificate, the CA's root and its
    current CRL (validation data), and the banks' certificates; with the platform's and the banks' GB/T 38540
    seals (`*.seal.der`, the ones the agreement's signatures carry, also readable on their own)."""
    found = {"platform.cert.pem": rt.keys.platform_certificate_pem}
    for name, path in (
        ("ca-root.cert.pem", root_certificate_path(rt.keys.folder)),
        (f"ca{CRL_SUFFIX}", crl_path(rt.keys.folder)),
        ("platform.seal.der", platform_seal_path(rt.keys.folder)),
        *((f"bank-{safe_name(code)}.seal.der", bank_seal_path(rt.keys.folder / "banks", code)) for code in bank_codes),
    ):
        if path.is_file():
            found[name] = path.read_bytes()
    for code in sorted(bank_codes):
        path = bank_certificate_path(rt.keys.folder, code)
        content = path.read_bytes() if path.is_file() else rt.keys.bank_certificate(code).encode()
        if content:
            found[f"bank-{safe_name(code)}.cert.pem"] = content
    return found


def collect(rt: Runtime, deal_id: int) -> DealEvidence:
    """The deal's records as the pack shows them; NotFound for an unknown deal. The audit entries are chained first
    (the newest may be waiting for a worker): all of the deal's, or Busy when another process is chaining them."""
    chain_audit(rt)
    with rt.db.uow() as uow:
        session = uow.session
        deal = session.get(Deal, deal_id)
        if deal is None:
            raise NotFound("存管单不存在", details={"deal_id": deal_id})
        agreement = deal.agreement
        snapshot = session.get(CityConfigSnapshot, deal.city_config_sha256)
        pins = dict(deal.definitions or {})
        definitions = {}
        for key, sha256 in pins.items():
            kind, _, name = key.partition(":")
            definitions[key] = (kind, name, rt.definitions.content(kind, name, sha256))
        notifications = _notifications(session, deal)
        return DealEvidence(
            deal=_deal_summary(deal),
            parties=_parties(deal),
            agreement_pdf=agreement.pdf if agreement is not None else None,
            agreement=_agreement_summary(agreement),
            timeline=[
                {
                    "id": event.id,
                    "at": utc_text(event.created_at),
                    "event": event.event,
                    "from_state": event.from_state,
                    "to_state": event.to_state,
                    "actor": event.actor,
                    "reason": (event.detail or {}).get("reason"),
                    "detail": event.detail,
                }
                for event in deal.events
            ],
            audit=_audit(session, deal),
            transfers=_transfers(session, deal.id),
            notifications=notifications,
            city_config=_city_config(snapshot),
            definitions=definitions,
            pins=pins,
            certificates=_certificates(rt, {deal.bank_code, *(item.bank_code for item in notifications)}),
        )
