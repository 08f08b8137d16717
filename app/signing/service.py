"""The parties' signing: links at confirmation, the real-name check with a one-time code, the signature.

Confirmation (`open_requests`, from the `sign_agreement` action) creates one request per party, in the product's
order (the payer, then the payee), and sends each party its link by SMS to the phone on record. A party opens the
link (the token is the credential: no login), asks for a code (`send_code`), enters name, ID number and code
(`check_identity`: compared with the deal's encrypted data for that role, never shown), then signs (`sign`): an SM2
key made for this signing, a personal certificate from the platform CA (name, masked ID number), the signature
into the field reserved at the party's 签字 line with the name as its image, the TSA's timestamp when one is
configured; the key is dropped afterwards. When the last party has signed, the bank's countersignature job is
queued. Every step is audited with masked values.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.agreements.countersign import countersign_request
from app.agreements.service import PLATFORM_SIGNER
from app.audit import log as audit
from app.crypto import sm3
from app.crypto.openssl_provider import generate_sm2_private_key_pem, sm2_public_key_pem
from app.db.models import Agreement, Deal
from app.db.signing_models import SigningRequest
from app.domain.pii_mask import mask_id_number, mask_name, mask_phone, normalize_id_number
from app.pdf.appearance import signature_appearance
from app.pdf.fields import PARTY_FIELDS, SIGNATURE_HEIGHT, SIGNATURE_WIDTH, sign_field
from app.pki.certificates import Usage, load_certificate, serial_hex
from app.pki.names import person_subject
from app.pki.store import issue_and_record, root_certificate_path
from app.platform.errors import ConfigError, CunguanError, ValidationError
from app.platform.runtime import Runtime
from app.queue.jobs import enqueue
from app.signing import clients, codes
from app.signing.clients import Client
from app.signing.policy import signing_roles

VERIFIED_FOR = timedelta(minutes=10)  # a passed check allows signing this long
CERTIFICATE_VALID = timedelta(days=1)  # a personal certificate for one signing


class SigningRefused(CunguanError):
    """A signing step refused; `message` is what the party reads."""

    code = "SIGNING_REFUSED"
    http_status = 400


@dataclass(frozen=True)
class Party:
    role: str
    label: str  # 买方, 卖方 … (the product's declaration)
    name: str
    id_number: str
    phone: str | None


def party_of(rt: Runtime, deal: Deal, role: str) -> Party:
    payer_label, payee_label = rt.products.get(deal.product).parties
    if role == "payer":
        return Party(role, payer_label, deal.buyer_name, deal.buyer_id_number, deal.buyer_phone)
    return Party(role, payee_label, deal.seller_name or "", deal.seller_id_number or "", deal.seller_phone)


def _sms(rt: Runtime):  # type: ignore[no-untyped-def]
    if rt.sms is None:
        raise ConfigError("未配置短信网关", code="SMS_NOT_CONFIGURED")
    return rt.sms


def open_requests(rt: Runtime, session: Session, deal: Deal) -> list[str]:
    """A signing request per party (in the deal's transaction) and its link sent by SMS; the tokens."""
    now = rt.clock()
    parties = [party_of(rt, deal, role) for role in signing_roles(rt, deal.product)]
    missing = "、".join(party.label for party in parties if not party.phone)
    if missing:  # a deal made before the form required the phones: it cannot be edited, only made again
        raise ValidationError(
            f"在线签署需要{missing}的手机号，本存管单新建时未登记。"
            f"请由运营取消本存管单（取消存管单），再新建一单并填写{missing}的手机号",
            code="SIGNING_PHONE_MISSING",
        )
    tokens = []
    for position, party in enumerate(parties, start=1):
        token = codes.new_token()
        session.add(
            SigningRequest(
                deal_id=deal.id,
                role=party.role,
                position=position,
                token_hash=codes.token_hash(token),
                expires_at=now + codes.LINK_VALID,
                created_at=now,
                code_attempts=0,
                codes_sent=0,
                failed_checks=0,
            )
        )
        send_link(rt, deal, party, token)
        _audit(session, now, party, deal, "signing.requested", {"phone": mask_phone(party.phone or "")})
        tokens.append(token)
    return tokens


def send_link(rt: Runtime, deal: Deal, party: Party, token: str) -> None:
    link = f"{rt.public_base_url.rstrip('/')}/sign/{token}"
    _sms(rt).send_code(party.phone or "", f"【存管平台】请签署资金存管协议 {deal.deal_no}：{link} ，7 天内有效。")


def _audit(session: Session, now: datetime, party: Party, deal: Deal, action: str, detail: dict | None = None) -> None:
    audit.append(
        session,
        at=now,
        actor=f"party:{party.role}",
        action=action,
        subject=f"deal:{deal.deal_no}",
        detail={"role": party.role, "name": mask_name(party.name), **(detail or {})},
    )


def find_request(session: Session, token: str, now: datetime, *, lock: bool = False) -> SigningRequest:
    """The request the link names, if it may still be used; otherwise SigningRefused in Chinese."""
    query = select(SigningRequest).where(SigningRequest.token_hash == codes.token_hash(token))
    request = session.scalar(query.with_for_update() if lock else query)
    if request is None:
        raise SigningRefused("签署链接无效", code="SIGNING_LINK_INVALID")
    if request.signed_at is not None:
        raise SigningRefused("该签署链接已使用，协议已签署", code="SIGNING_LINK_USED")
    if now >= request.expires_at:
        raise SigningRefused("签署链接已过期，请联系经纪人重新发起签署", code="SIGNING_LINK_EXPIRED")
    if request.failed_checks >= codes.CHECKS_PER_LINK:
        raise SigningRefused("身份核验失败次数过多，该签署链接已锁定", code="SIGNING_LINK_LOCKED")
    return request


def _deal(session: Session, request: SigningRequest) -> Deal:
    deal = session.get(Deal, request.deal_id)
    assert deal is not None
    return deal


def _code_state(request: SigningRequest) -> codes.CodeState:
    return codes.CodeState(
        request.code_hash, request.code_expires_at, request.code_attempts, request.codes_sent, request.last_code_at
    )


def _store_code_state(request: SigningRequest, state: codes.CodeState) -> None:
    request.code_hash, request.code_expires_at = state.code_hash, state.expires_at
    request.code_attempts, request.codes_sent, request.last_code_at = state.attempts, state.sent, state.last_sent_at


def send_code(rt: Runtime, token: str, client: Client) -> str:
    """Send a one-time code to the phone on record; the masked phone. Refused by the link's limits, then by the
    client's (ClientLimited, audited)."""
    now = rt.clock()
    with rt.db.uow() as uow:
        request = find_request(uow.session, token, now, lock=True)
        deal = _deal(uow.session, request)
        party = party_of(rt, deal, request.role)
        refused = codes.may_send(_code_state(request), now)
        if refused:
            raise SigningRefused(refused, code="SIGNING_CODE_RATE")
        limited = clients.refusal(uow.session, client, clients.CODE_SENT, now)
        detail = {"phone": mask_phone(party.phone or ""), **client.audit_detail()}
        if limited is None:
            code = codes.new_code()
            _store_code_state(request, codes.issue(_code_state(request), token, code, now))
            clients.record(uow.session, client, clients.CODE_SENT, now)
            _sms(rt).send_code(party.phone or "", f"【存管平台】您的签署验证码为 {code}，5 分钟内有效，请勿告诉他人。")
            _audit(uow.session, now, party, deal, "signing.code_sent", detail)
        else:
            _audit(uow.session, now, party, deal, "signing.client_limited", {"kind": clients.CODE_SENT, **detail})
        uow.commit()
    if limited is not None:
        raise limited
    return mask_phone(party.phone or "")


def _same(entered: str, expected: str) -> bool:
    return hmac.compare_digest(entered.encode(), expected.encode())


def check_identity(rt: Runtime, token: str, name: str, id_number: str, code: str, client: Client) -> None:
    """The real-name check: name and ID number as the deal records them for this role, and the code. A wrong
    entry is counted (and kept), for the link and for the client, before it is refused; a client that failed too
    often this hour is refused before anything is checked (ClientLimited, audited)."""
    now = rt.clock()
    refusal: CunguanError | None = None
    with rt.db.uow() as uow:
        request = find_request(uow.session, token, now, lock=True)
        deal = _deal(uow.session, request)
        party = party_of(rt, deal, request.role)
        refusal = clients.refusal(uow.session, client, clients.CHECK_FAILED, now)
        if refusal is not None:
            detail = {"kind": clients.CHECK_FAILED, **client.audit_detail()}
            _audit(uow.session, now, party, deal, "signing.client_limited", detail)
        else:
            refusal = _check(uow.session, now, request, party, deal, token, (name, id_number, code))
            if refusal is not None:
                clients.record(uow.session, client, clients.CHECK_FAILED, now)
        uow.commit()
    if refusal is not None:
        raise refusal


def _check(
    session: Session,
    now: datetime,
    request: SigningRequest,
    party: Party,
    deal: Deal,
    token: str,
    entered: tuple[str, str, str],
) -> SigningRefused | None:
    """Compare what the party entered (name, ID number, code); count and audit a failure; None when it passed."""
    name, id_number, code = entered
    identity_ok = _same(name.strip(), party.name.strip()) and _same(
        normalize_id_number(id_number), normalize_id_number(party.id_number)
    )
    if not identity_ok:
        request.failed_checks += 1
        _audit(session, now, party, deal, "signing.check_failed", {"reason": "identity"})
        return SigningRefused("姓名或证件号码与协议登记的信息不一致", code="SIGNING_IDENTITY_MISMATCH")
    state, why = codes.check(_code_state(request), token, code, now)
    _store_code_state(request, state)
    if why is not None:
        _audit(session, now, party, deal, "signing.check_failed", {"reason": "code"})
        return SigningRefused(why, code="SIGNING_CODE_WRONG")
    request.verified_at = now
    _audit(session, now, party, deal, "signing.verified", {"id": mask_id_number(party.id_number)})
    return None


def record_opening(rt: Runtime, token: str, client: Client) -> None:
    """Audit that the link's page was opened (`signing.opened`: the masked address, the user agent's hash)."""
    now = rt.clock()
    with rt.db.uow() as uow:
        request = find_request(uow.session, token, now)
        deal = _deal(uow.session, request)
        _audit(uow.session, now, party_of(rt, deal, request.role), deal, "signing.opened", client.audit_detail())
        uow.commit()


def _earlier_unsigned(session: Session, request: SigningRequest) -> bool:
    query = select(SigningRequest).where(
        SigningRequest.deal_id == request.deal_id,
        SigningRequest.position < request.position,
        SigningRequest.signed_at.is_(None),
    )
    return session.scalar(query) is not None


def sign(rt: Runtime, token: str) -> None:
    """The verified party's signature into its field of the stored agreement; the last party's queues the bank."""
    now = rt.clock()
    with rt.db.uow() as uow:
        request = find_request(uow.session, token, now, lock=True)
        if request.verified_at is None or now - request.verified_at > VERIFIED_FOR:
            raise SigningRefused("请先完成身份核验（姓名、证件号码与短信验证码）", code="SIGNING_NOT_VERIFIED")
        if _earlier_unsigned(uow.session, request):
            raise SigningRefused("请等待付款方先完成签署", code="SIGNING_OUT_OF_ORDER")
        deal = _deal(uow.session, request)
        query = select(Agreement).where(Agreement.deal_id == deal.id).with_for_update()
        agreement = uow.session.scalar(query)
        if agreement is None:
            raise SigningRefused("协议尚未生成，暂不能签署", code="AGREEMENT_NOT_SIGNED")
        party = party_of(rt, deal, request.role)
        before = agreement.pdf_sm3
        signed, serial = _signed_by(rt, agreement.pdf, party, deal.deal_no, now)
        agreement.pdf, agreement.pdf_sm3 = signed, sm3(signed).hex()
        request.signed_at, request.certificate_serial = now, serial
        _audit(uow.session, now, party, deal, "agreement.party_signed", {"certificate_serial": serial})
        audit.append(
            uow.session,
            at=now,
            actor=f"party:{party.role}",
            action="agreement.sign",
            subject=f"deal:{deal.deal_no}",
            before={"pdf_sm3": before},
            after={"pdf_sm3": agreement.pdf_sm3},
            detail={"signer": party.label},
        )
        uow.session.flush()
        if not _earlier_unsigned_any(uow.session, deal.id):
            enqueue(uow.session, *countersign_request(deal.id), now=now, bank_code=deal.bank_code)
        uow.commit()


def _earlier_unsigned_any(session: Session, deal_id: int) -> bool:
    query = select(SigningRequest).where(SigningRequest.deal_id == deal_id, SigningRequest.signed_at.is_(None))
    return session.scalar(query) is not None


def _signed_by(rt: Runtime, pdf: bytes, party: Party, deal_no: str, now: datetime) -> tuple[bytes, str]:
    """`pdf` signed by `party` with a key made now and dropped on return; (the file, the certificate's serial)."""
    private_key = generate_sm2_private_key_pem()
    certificate = issue_and_record(
        rt.keys.folder,
        sm2_public_key_pem(private_key),
        person_subject(party.name, party.id_number),
        usage=Usage.PERSONAL,
        valid_from=now - timedelta(minutes=5),
        valid_until=now + CERTIFICATE_VALID,
    )
    root = root_certificate_path(rt.keys.folder)
    signed = sign_field(
        pdf,
        PARTY_FIELDS[party.role],
        signature_appearance(party.name, SIGNATURE_WIDTH, SIGNATURE_HEIGHT),
        private_key,
        certificate,
        signer_name=party.name,
        reason=f"{party.label}签署资金存管协议 {deal_no}（{PLATFORM_SIGNER}核验实名）",
        location="移动端签署",
        signing_time=now,
        timestamper=rt.timestamper(),
        chain=[root.read_bytes()] if root.is_file() else [],
    )
    del private_key  # never stored: one key per signing
    return signed, serial_hex(load_certificate(certificate))


@dataclass(frozen=True)
class SigningPage:
    """What the party's page shows: masked values only, the agreement's HTML as signed by the platform."""

    deal_no: str
    role_label: str
    masked_name: str
    masked_phone: str
    agreement_html: str
    verified: bool  # the check passed and signing is still allowed
    waiting: bool  # an earlier party has not signed yet
    code_sent: bool


def signing_page(rt: Runtime, token: str) -> SigningPage:
    now = rt.clock()
    with rt.db.uow() as uow:
        request = find_request(uow.session, token, now)
        deal = _deal(uow.session, request)
        party = party_of(rt, deal, request.role)
        agreement = deal.agreement
        return SigningPage(
            deal_no=deal.deal_no,
            role_label=party.label,
            masked_name=mask_name(party.name),
            masked_phone=mask_phone(party.phone or ""),
            agreement_html=agreement.html if agreement is not None else "",
            verified=request.verified_at is not None and now - request.verified_at <= VERIFIED_FOR,
            waiting=_earlier_unsigned(uow.session, request),
            code_sent=request.code_hash is not None,
        )
