"""The bank's countersignature on a deal's agreement, asked of the bank over the protocol.

After the platform signs (the `sign_agreement` action), a job asks the deal's bank to sign: the platform
appends an empty signature field to the stored PDF (an incremental update, so the platform's signature stays
verifiable), sends the SM3 digest of the signed byte ranges (`POST /v1/signatures`), and embeds the detached
CMS the bank answers - made with the bank's seal key, which only the bank holds, and carrying the bank's GB/T 38540
seal (the bank's own copy: the platform only reserves room for it). The signature is checked
against the bank's imported certificate before it is kept. A bank that cannot be reached, or an answer that
does not verify, is asked again later (the worker's backoff); a second signature request is harmless.
A stored file whose signatures do not verify against this instance's seal certificates, or that was changed
after them, is never sent to the bank: the job fails for good (PDF_SIGNATURE_BROKEN, a dead job on the console).
With a TSA configured (CUNGUAN_TSA_URL) the bank's signature gets a signature timestamp and the file a document
timestamp (/DocTimeStamp) as its last update; a TSA that cannot be reached is asked again with the job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from app.agreements.service import trusted_certificates, validation_material
from app.audit import log as audit
from app.banks.gateway import BankOutcomeUnknown, BankUnavailable
from app.crypto import sm3
from app.crypto.keys import bank_certificate_path
from app.db.models import Agreement
from app.pdf.dss import validation_data_extension
from app.pdf.sign import SEALED_SIGNATURE_SIZE, prepare_signature, sealed_size, timestamp_document
from app.pdf.timestamps import add_signature_timestamp
from app.pdf.verify import require_verified_signatures, verify_pdf_signatures
from app.pki.certificates import load_certificate, serial_hex
from app.pki.store import root_certificate_path
from app.platform.errors import CryptoError, CunguanError, NotFound
from app.platform.runtime import Runtime
from app.queue.jobs import Retry
from app.seals.issue import bank_seal_path
from app.tsa.client import Timestamper

COUNTERSIGN_JOB = "agreement_countersign"


def countersign_request(deal_id: int) -> tuple[str, dict[str, Any]]:
    """The job (kind, payload) that asks the deal's bank to countersign its platform-signed agreement."""
    return COUNTERSIGN_JOB, {"deal_id": deal_id}


def bank_has_signed(rt: Runtime, bank_code: str, pdf: bytes) -> bool:
    """Whether `pdf` carries a valid signature made with the bank's seal certificate (as imported), its seal
    made by the platform CA (the root is trusted as the seal's maker; the signature must be the bank's)."""
    path = bank_certificate_path(rt.keys.folder, bank_code)
    if not path.is_file():
        return False
    root = root_certificate_path(rt.keys.folder)
    anchors = [path.read_bytes(), *([root.read_bytes()] if root.is_file() else [])]
    try:
        serial = serial_hex(load_certificate(anchors[0]))
        reports = verify_pdf_signatures(pdf, anchors)
    except CunguanError:
        return False
    return any(report.valid and report.certificate_serial == serial for report in reports)


def _bank_signature_size(rt: Runtime, bank_code: str) -> int:
    """Room for the bank's CMS: sized by the copy of its seal the platform keeps (`banks/CODE.seal.der`, the one the
    CA made) with 4 KiB to spare (a seal made anew since, a longer chain), else SEALED_SIGNATURE_SIZE (a seal of
    unknown size)."""
    kept = bank_seal_path(rt.keys.folder / "banks", bank_code)
    return sealed_size(kept.read_bytes()) + 4096 if kept.is_file() else SEALED_SIGNATURE_SIZE


def _with_tsa(stamp: Callable[[bytes, Timestamper], bytes], document: bytes, timestamper: Timestamper) -> bytes:
    """`stamp(document, timestamper)`; the TSA's failures (unreachable, refusing, a bad token) are asked again."""
    try:
        return stamp(document, timestamper)
    except CryptoError as error:
        if not error.code.startswith("TSA_"):
            raise
        raise Retry(f"时间戳服务暂时无法盖时间戳：{error.message}", details=error.details) from error


def countersign(rt: Runtime, payload: dict[str, Any]) -> None:
    """Job handler: ask the deal's bank for its signature on the stored agreement and keep the signed PDF."""
    deal_id = payload["deal_id"]
    with rt.db.uow() as uow:
        agreement = uow.session.scalar(select(Agreement).where(Agreement.deal_id == deal_id))
        if agreement is None:
            raise NotFound("协议尚未签署", code="AGREEMENT_NOT_SIGNED", details={"deal_id": deal_id})
        bank_code, deal_no, pdf, before = (
            agreement.deal.bank_code,
            agreement.deal.deal_no,
            agreement.pdf,
            agreement.pdf_sm3,
        )
    if bank_has_signed(rt, bank_code, pdf):
        return
    require_verified_signatures(pdf, trusted_certificates(rt))
    bank, purpose = rt.bank(bank_code), f"存管银行确认 {deal_no}"
    prepared = prepare_signature(  # room for the bank's seal, which its CMS carries
        pdf,
        signer_name=bank.name,
        reason=purpose,
        location=bank.name,
        signing_time=rt.clock(),
        size=_bank_signature_size(rt, bank_code),
    )
    try:
        signature = rt.gateway(bank_code).request_signature(f"SIG-{deal_no}-{before[:16]}", prepared.digest, purpose)
    except (BankUnavailable, BankOutcomeUnknown) as error:
        raise Retry(f"银行 {bank_code} 暂时无法签章：{error.message}", details=error.details) from error
    timestamper = rt.timestamper()
    if timestamper is not None:  # the TSA's time on the bank's signature (an unsigned attribute: the bank's CMS stays)
        signature = _with_tsa(add_signature_timestamp, signature, timestamper)
    signed = prepared.embed(signature)
    if not bank_has_signed(rt, bank_code, signed):
        problems = [error for report in verify_pdf_signatures(signed) for error in report.errors]
        raise Retry(
            f"银行 {bank_code} 的签章无法用其证书验证，或其电子印章无效",
            details={"deal_id": deal_id, "bank": bank_code, "problems": problems},
        )
    if timestamper is not None:  # the last update: validation data and a document timestamp over the whole file
        extension = validation_data_extension(*validation_material(rt))
        signed = _with_tsa(lambda pdf, stamper: timestamp_document(pdf, stamper, extension), signed, timestamper)
    with rt.db.uow() as uow:
        query = select(Agreement).where(Agreement.deal_id == deal_id).with_for_update()
        agreement = uow.session.scalar(query)
        if agreement is None or agreement.pdf_sm3 != before:  # signed meanwhile by another run
            return
        agreement.pdf, agreement.pdf_sm3 = signed, sm3(signed).hex()
        audit.append(
            uow.session,
            at=rt.clock(),
            actor=f"bank:{bank_code}",
            action="agreement.bank_signed",
            subject=f"deal:{deal_no}",
            before={"pdf_sm3": before},
            after={"pdf_sm3": agreement.pdf_sm3},
            detail={"bank": bank_code},
        )
        uow.commit()


JOBS = {COUNTERSIGN_JOB: countersign}
