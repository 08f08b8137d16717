"""Agreements of deals: the data they are made of, the HTML preview, the signed PDF, later signatures.

A deal's agreement is a function of (template version, the deal's pinned city config, the deal's data):
`render_html` reads nothing else, so re-rendering a signed deal's agreement gives the same text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asn1crypto import pem
from sqlalchemy.orm import Session, object_session

from app.agreements.sources import deal_source
from app.audit import log as audit
from app.crypto import sm3
from app.crypto.keys import bank_certificate_path
from app.db.models import Agreement, Deal
from app.deals.pinning import pinned_city
from app.definitions.banks import pinned_bank
from app.definitions.products import pinned_variant
from app.domain.agreement import AgreementData, Party, agreement_context
from app.domain.agreement_terms import deal_terms
from app.domain.cities import CityConfig, ReleaseRule
from app.domain.extra_fields import read_extras
from app.domain.release_plan import PlannedTranche, plan_error, planned
from app.fees.status import agreement_terms
from app.pdf.fields import PARTY_FIELDS, places_for, reserve_signature_fields
from app.pdf.render import html_to_pdf, render_agreement_html, template_masked_fields
from app.pdf.sign import sign_pdf
from app.pdf.verify import PdfSignatureReport, verify_pdf_signatures
from app.pki.certificates import is_self_issued, load_certificate
from app.pki.chain import TrustStore
from app.pki.seals import legacy_platform_certificates
from app.pki.store import crl_path, root_certificate_path, trust_store
from app.platform.errors import CunguanError
from app.platform.runtime import Runtime
from app.signing.policy import signing_roles
from app.state_machine.parameters import deadline_texts

PLATFORM_SIGNER = "存管平台"


def _session(deal: Deal) -> Session:
    session = object_session(deal)
    assert session is not None, "the deal must be attached to a session"
    return session


def _city(rt: Runtime, deal: Deal) -> CityConfig:
    """The config the deal pinned, read in the deal's own session."""
    return pinned_city(rt, _session(deal), deal)


def agreement_data(rt: Runtime, deal: Deal) -> AgreementData:
    city = _city(rt, deal)
    return agreement_data_under(rt, deal, city, agreement_terms(rt, _session(deal), deal))


def agreement_data_under(rt: Runtime, deal: Deal, city: CityConfig, fees: Mapping[str, Any]) -> AgreementData:
    """The agreement's data of `deal` under `city` with its `fees`: the config the deal pinned, or, for the
    preview of a draft (`app.cities.draft_preview`), the draft's config and a sample deal that is never stored."""
    account = deal.virtual_account
    product = city.products.get(deal.product)
    definition = rt.workflow(deal.workflow_id, deal.workflow_version)
    bank = pinned_bank(rt.definitions, rt.known_banks, deal)  # the bank config it started with
    return AgreementData(
        agreement_no=deal.deal_no,
        city_name=city.name,
        product_name=pinned_variant(rt.definitions, rt.products, deal).name,  # the declaration it started with
        bank_name=bank.name if bank is not None else rt.bank(deal.bank_code).name,
        buyer=Party(deal.buyer_name, deal.buyer_id_number, deal.buyer_bank_name, deal.buyer_bank_account),
        seller=Party(deal.seller_name, deal.seller_id_number, deal.seller_bank_name, deal.seller_bank_account),
        property_address=deal.property_address,
        certificate_no=deal.certificate_no,
        price_fen=deal.price_fen,
        custody_amount_fen=deal.custody_amount_fen,
        created_at=deal.created_at,
        account_no=account.account_no if account is not None else None,
        clauses=product.clauses if product is not None else (),
        authority=product.authority if product is not None else None,
        stages=tuple(t.label for t in product.release.tranches) if product is not None and product.release else (),
        deadlines=deadline_texts(definition.parameters, product.overrides() if product is not None else {}),
        fees=fees if product is not None else {},
        release_plan=_release_plan(product.release if product is not None else None, deal, definition.events),
        terms=deal_terms(deal.facts or {}),
        extra_form=product.form if product is not None else None,
        extra_values=read_extras(deal.extra_fields),
    )


def _release_plan(rule: ReleaseRule | None, deal: Deal, events: Mapping[str, str]) -> tuple[PlannedTranche, ...]:
    """The deal's release plan with its amounts and events in Chinese; none for a plan its amount cannot take
    (intake refuses such deals, app/domain/release_plan.py)."""
    if rule is None or plan_error(rule, deal.custody_amount_fen) is not None:
        return ()
    return planned(rule, deal.custody_amount_fen, events)


def render_html(rt: Runtime, deal: Deal) -> str:
    """The agreement from the template, partials and clauses the deal pinned (`app.agreements.sources`)."""
    product, version = deal.agreement_template.split("/")
    source = deal_source(rt.definitions, deal)
    masked = template_masked_fields(product, version, source)
    return render_agreement_html(product, version, agreement_context(agreement_data(rt, deal), masked), source)


def sign_agreement(rt: Runtime, deal: Deal) -> Agreement:
    """Render the agreement exactly as previewed, to PDF, and sign it inside the PDF with the platform seal, a
    certification signature (DocMDP P=2: only later signatures may follow) carrying the platform's GB/T 38540
    seal (app.seals); audited in the deal's transaction.
    With party signing (`rt.party_signing`) the file first gets an empty signature field at each signing party's 签字
    line, which the parties fill later (`app.signing.service`)."""
    html = render_html(rt, deal)
    now = rt.clock()
    root = root_certificate_path(rt.keys.folder)
    unsigned = html_to_pdf(html)
    if rt.party_signing:  # the signing parties' fields at their 签字 lines (payer first), covered by the certification
        signing = {PARTY_FIELDS[role] for role in signing_roles(rt, deal.product)}
        places = [place for place in places_for(unsigned, list(PARTY_FIELDS.values())) if place.name in signing]
        unsigned = reserve_signature_fields(unsigned, places)
    signed = sign_pdf(
        unsigned,
        rt.keys.platform_private_key_pem,
        rt.keys.platform_certificate_pem,
        signer_name=PLATFORM_SIGNER,
        reason=f"资金存管协议 {deal.deal_no}",
        location=_city(rt, deal).name,
        signing_time=now,
        certify=True,
        timestamper=rt.timestamper(),  # the TSA's trusted time on the signature, when one is configured
        chain=[root.read_bytes()] if root.is_file() else [],  # the CMS carries seal certificate and root
        seal=rt.keys.platform_seal,  # the platform's GB/T 38540 seal, a signed attribute
    )
    agreement = Agreement(
        deal_id=deal.id,
        template=deal.agreement_template,
        html=html,
        pdf=signed,
        pdf_sm3=sm3(signed).hex(),
        signed_at=now,
    )
    audit.append(
        _session(deal),
        at=now,
        actor="platform",
        action="agreement.sign",
        subject=f"deal:{deal.deal_no}",
        after={"template": agreement.template, "pdf_sm3": agreement.pdf_sm3},
        detail={"signer": PLATFORM_SIGNER},
    )
    return agreement


def _self_signed(certificate_pem: bytes) -> bool:
    try:
        return is_self_issued(load_certificate(certificate_pem))
    except CunguanError:
        return False


def _bank_certificates(rt: Runtime) -> list[bytes]:
    paths = [bank_certificate_path(rt.keys.folder, code) for code in rt.banks]
    return [path.read_bytes() for path in paths if path.is_file()]


def trust_anchors(rt: Runtime) -> list[bytes]:
    """The certificates this instance trusts for agreement signatures (PEM): the platform CA's root, and, pinned
    one by one, the self-signed seal certificates of before the CA - the platform's old ones (legacy/) and a
    bank's imported self-signed one - so that agreements signed with them keep verifying. Certificates the CA
    issued are trusted through the root only, so that its CRL applies to them."""
    root = root_certificate_path(rt.keys.folder)
    candidates = [rt.keys.platform_certificate_pem, *_bank_certificates(rt)]
    return [
        *([root.read_bytes()] if root.is_file() else []),
        *legacy_platform_certificates(rt.keys.folder),
        *(certificate for certificate in candidates if _self_signed(certificate)),
    ]


def trusted_certificates(rt: Runtime) -> TrustStore:
    """`trust_anchors` with the CA's current CRL (ca/crl.pem): what agreement signatures are verified against."""
    folder = rt.keys.folder
    return TrustStore.of(trust_anchors(rt), [crl_path(folder).read_bytes()] if crl_path(folder).is_file() else [])


def validation_material(rt: Runtime) -> tuple[list[bytes], list[bytes]]:
    """(certificates, CRLs) as DER that a verifier of this instance's agreements needs offline: the root, the seal
    certificates (platform, banks, the old self-signed ones) and the TSA's, and the CA's current CRL; the document
    timestamp's update carries them in the PDF's /DSS."""
    folder = rt.keys.folder
    pems = [*trust_anchors(rt), rt.keys.platform_certificate_pem, *_bank_certificates(rt)]
    pems += rt.trusted_tsa_certificates() or []
    crls = [crl_path(folder).read_bytes()] if crl_path(folder).is_file() else []
    return list(dict.fromkeys(pem.unarmor(item)[2] for item in pems)), [pem.unarmor(item)[2] for item in crls]


def tsa_trust(rt: Runtime) -> TrustStore | None:
    """What timestamps are checked against: the configured TSA certificate or its CA (CUNGUAN_TSA_CERT) and the
    platform root, with the CA's CRL (a TSA certificate our CA issued, `flask tsa certify`, can be revoked); None
    without CUNGUAN_TSA_CERT (development: the token's own certificate)."""
    pinned = rt.trusted_tsa_certificates()
    return None if pinned is None else trust_store(rt.keys.folder, pinned)


def verify_agreement_pdf(rt: Runtime, pdf: bytes, require_timestamp: bool = False) -> list[PdfSignatureReport]:
    """Every signature in `pdf`: its certificate path up to this instance's trust anchors and against the CA's CRL
    (`trusted_certificates`), its timestamp's TSA against `tsa_trust`; `require_timestamp`: a signature without
    one fails."""
    return verify_pdf_signatures(pdf, trusted_certificates(rt), tsa_trust(rt), require_timestamp)
