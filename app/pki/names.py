"""Subject names of the platform CA's certificates, after the profiles Chinese CAs use (GB/T 20518, CFCA):
an organisation's certificate names its legal name (organizationName, and commonName for the seal) and its
统一社会信用代码 in serialNumber (2.5.4.5) and, ETSI EN 319 412-1 style, organizationIdentifier (2.5.4.97)
"NTRCN-<USCC>"; a person's names the person (commonName) and the masked ID number (serialNumber), never the
whole number. Pure: no Flask, no database."""

from __future__ import annotations

import re
from dataclasses import dataclass

from asn1crypto import x509

from app.domain.pii_mask import mask_id_number
from app.platform.errors import ValidationError

# GB 32100-2015: 18 characters from this alphabet (no I, O, Z, S, V), the last a check character
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC = re.compile(rf"[{_USCC_ALPHABET}]{{18}}")
USCC_IDENTIFIER_PREFIX = "NTRCN-"  # ETSI EN 319 412-1 semantics identifier: national trade register, China


def uscc_check_character(first_17: str) -> str:
    """The 18th character of a 统一社会信用代码 whose first 17 are given (GB 32100-2015)."""
    total = sum(_USCC_ALPHABET.index(char) * weight for char, weight in zip(first_17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(value: str) -> bool:
    return _USCC.fullmatch(value) is not None and uscc_check_character(value[:17]) == value[17]


@dataclass(frozen=True)
class Organization:
    """A legal person: its registered name and 统一社会信用代码 (checked)."""

    legal_name: str
    uscc: str

    def __post_init__(self) -> None:
        if not self.legal_name.strip():
            raise ValidationError("证书主体缺少单位名称", code="INVALID_SUBJECT")
        if not is_valid_uscc(self.uscc):
            raise ValidationError("统一社会信用代码无效", code="INVALID_USCC", details={"uscc": self.uscc})


def organization_subject(organization: Organization, common_name: str | None = None) -> x509.Name:
    """C=CN, O=<legal name>, CN=<common name, default the legal name>, serialNumber=<USCC>,
    organizationIdentifier=NTRCN-<USCC>."""
    return x509.Name.build(
        {
            "country_name": "CN",
            "organization_name": organization.legal_name,
            "organization_identifier": USCC_IDENTIFIER_PREFIX + organization.uscc,
            "serial_number": organization.uscc,
            "common_name": common_name or organization.legal_name,
        }
    )


def person_subject(name: str, id_number: str) -> x509.Name:
    """C=CN, CN=<name>, serialNumber=<masked ID number> (110***********002X): the certificate never carries
    the whole number."""
    if not name.strip() or not id_number.strip():
        raise ValidationError("个人证书需要姓名与证件号码", code="INVALID_SUBJECT")
    return x509.Name.build({"country_name": "CN", "common_name": name, "serial_number": mask_id_number(id_number)})


def plain_subject(common_name: str, organization: str | None = None) -> x509.Name:
    """A name without identifiers (the root CA's, a test's)."""
    fields = {"country_name": "CN", "common_name": common_name}
    if organization:
        fields["organization_name"] = organization
    return x509.Name.build(fields)


def display_name(name: x509.Name) -> str:
    """The commonName, else the whole name, for reports."""
    native = name.native
    return str(native.get("common_name") or name.human_friendly)
