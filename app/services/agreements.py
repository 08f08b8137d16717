"""Agreements of deals: the data they are made of, the HTML preview, the signed PDF."""

from __future__ import annotations

from sqlalchemy.orm import object_session

from app.crypto import sm3
from app.db.models import Agreement, Deal
from app.domain.agreement import AgreementData, Party, agreement_context
from app.pdf.render import html_to_pdf, render_agreement_html
from app.pdf.sign import sign_pdf
from app.services.pinning import pinned_city
from app.services.runtime import Runtime

PRODUCT_NAMES = {"resale_escrow": "二手房交易资金存管"}


def _city_name(rt: Runtime, deal: Deal) -> str:
    """From the config the deal pinned, read in the deal's own session."""
    session = object_session(deal)
    assert session is not None, "the deal must be attached to a session"
    return pinned_city(rt, session, deal).name


def agreement_data(rt: Runtime, deal: Deal) -> AgreementData:
    account = deal.virtual_account
    return AgreementData(
        agreement_no=deal.deal_no,
        city_name=_city_name(rt, deal),
        product_name=PRODUCT_NAMES.get(deal.product, deal.product),
        bank_name=rt.bank(deal.bank_code).name,
        buyer=Party(deal.buyer_name, deal.buyer_id_number, deal.buyer_bank_name, deal.buyer_bank_account),
        seller=Party(deal.seller_name, deal.seller_id_number, deal.seller_bank_name, deal.seller_bank_account),
        property_address=deal.property_address,
        certificate_no=deal.certificate_no,
        price_fen=deal.price_fen,
        custody_amount_fen=deal.custody_amount_fen,
        created_at=deal.created_at,
        account_no=account.account_no if account is not None else None,
    )


def render_html(rt: Runtime, deal: Deal) -> str:
    product, version = deal.agreement_template.split("/")
    return render_agreement_html(product, version, agreement_context(agreement_data(rt, deal)))


def sign_agreement(rt: Runtime, deal: Deal) -> Agreement:
    """Render the agreement exactly as previewed, to PDF, and sign it inside the PDF with the platform seal."""
    html = render_html(rt, deal)
    now = rt.clock()
    signed = sign_pdf(
        html_to_pdf(html),
        rt.keys.platform_private_key_pem,
        rt.keys.platform_certificate_pem,
        signer_name="存管平台",
        reason=f"资金存管协议 {deal.deal_no}",
        location=_city_name(rt, deal),
        signing_time=now,
    )
    return Agreement(
        deal_id=deal.id,
        template=deal.agreement_template,
        html=html,
        pdf=signed,
        pdf_sm3=sm3(signed).hex(),
        signed_at=now,
    )
