"""Who signs on a phone: the parties whose product form asks for their mobile phone, when party signing is on.

A party the form asks no phone of (a developer, a contractor, a guarantee's beneficiary, a landlord the fund
centre pays) does not sign on a phone; the platform's and the bank's signatures stand for it. With party signing
on (`rt.party_signing`, the default) the intake form requires the signing parties' phones, so that confirmation
finds them.
"""

from __future__ import annotations

from app.platform.runtime import Runtime

# by base product: each role that signs with its phone field in the intake form
SIGNING_PHONES: dict[str, dict[str, str]] = {
    "resale_escrow": {"payer": "buyer_phone", "payee": "seller_phone"},
    "gov_escrow": {"payer": "buyer_phone", "payee": "seller_phone"},
    "rent_custody": {"payer": "tenant_phone", "payee": "landlord_phone"},
    "provident_fund_rent": {"payer": "tenant_phone"},
    "renovation_escrow": {"payer": "owner_phone"},
    "intent_deposit": {"payer": "buyer_phone"},
    "guarantee_release": {"payer": "applicant_phone"},
}
SIGNING_ORDER = ("payer", "payee")
PHONE_HELP = "必填：当事人在手机上签署协议，签署链接与验证码以短信发送至此号码"


def signing_roles(rt: Runtime, product: str) -> tuple[str, ...]:
    """The roles of `product` that sign on a phone, in signing order (the payer, then the payee)."""
    phones = SIGNING_PHONES[rt.products.base_of(product)]
    return tuple(role for role in SIGNING_ORDER if role in phones)


def required_phones(rt: Runtime, product: str) -> dict[str, str]:
    """The intake form's fields party signing makes required (name -> help text); none with it off."""
    if not rt.party_signing:
        return {}
    return dict.fromkeys(SIGNING_PHONES[rt.products.base_of(product)].values(), PHONE_HELP)
