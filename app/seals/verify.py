"""The seal a CMS signature carries (signed attribute `ses_seal`, app.seals.structures), checked for the PDF
verifier: the maker's signature, the maker being a trusted CA, the seal's validity at the signing time (the
trusted one when the signature has a timestamp), the signer's certificate in its certList, and that an
organisation signs with its seal. Pure: no Flask, no files."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms, x509

from app.domain.timezone import SHANGHAI
from app.pki.chain import TrustStore
from app.platform.errors import CunguanError
from app.seals.seal import SEAL_TYPES, Seal, read_seal, seal_problems
from app.seals.structures import SES_SEAL_ATTRIBUTE

# Organisations' signatures made from this moment on (trusted time, else the stated signing time) must carry a
# seal; earlier ones - files signed before seals existed - verify as before, with the note NO_SEAL_NOTE.
SEALS_REQUIRED_FROM = datetime(2026, 12, 5, tzinfo=UTC)
NO_SEAL_NOTE = "无电子印章（签署早于电子印章启用日 2026-12-05，按原规则验证）"


@dataclass(frozen=True)
class SealReport:
    """What the verifier says about one signature's seal."""

    name: str | None = None
    es_id: str | None = None
    seal_type: int | None = None
    valid_start: datetime | None = None
    valid_end: datetime | None = None
    maker: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        """One Chinese phrase: the seal, its validity (dates in Beijing time), its maker and the verdict."""
        if self.name is None:
            return "；".join(self.errors)
        start, end = (
            moment.astimezone(SHANGHAI).date() if moment else "—" for moment in (self.valid_start, self.valid_end)
        )
        verdict = "有效" if self.valid else "无效：" + "；".join(self.errors)
        return f"电子印章“{self.name}”（印章标识 {self.es_id}，{start} 至 {end}，制章者 {self.maker}）{verdict}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "es_id": self.es_id,
            "type": SEAL_TYPES.get(self.seal_type or 0),
            "valid_from": self.valid_start.isoformat() if self.valid_start else None,
            "valid_until": self.valid_end.isoformat() if self.valid_end else None,
            "issuer": self.maker,
            "verdict": "电子印章有效" if self.valid else "电子印章无效",
            "valid": self.valid,
            "errors": self.errors,
        }


def is_organisation(certificate: x509.Certificate) -> bool:
    """An organisation's certificate names its 统一社会信用代码 (organizationIdentifier, app.pki.names)."""
    return "organization_identifier" in certificate.subject.native


def carried_seals(signer: cms.SignerInfo) -> list[bytes]:
    """The DER of every SES_Seal in the signer's signed attributes."""
    found = []
    for attribute in signer["signed_attrs"]:
        if attribute["type"].native == SES_SEAL_ATTRIBUTE:
            found.extend(value.dump() for value in attribute["values"])
    return found


def _report(seal: Seal, errors: list[str]) -> SealReport:
    return SealReport(seal.name, seal.es_id, seal.seal_type, seal.valid_start, seal.valid_end, seal.maker_name, errors)


def check_signature_seal(
    signer: cms.SignerInfo, certificate: x509.Certificate, makers: TrustStore | None, at: datetime | None
) -> tuple[SealReport | None, str | None]:
    """(the report on the seal the signature carries, or None; a note when an organisation's signature from
    before SEALS_REQUIRED_FROM has none). An organisation's signature from then on without a seal gives a
    report with the error; `makers` None takes the maker the seal carries as it is."""
    seals = carried_seals(signer)
    organisation = is_organisation(certificate)
    if not seals:
        if not organisation:
            return None, None
        if at is not None and at < SEALS_REQUIRED_FROM:
            return None, NO_SEAL_NOTE
        return SealReport(errors=["机构签名缺少电子印章（GB/T 38540 SES_Seal）"]), None
    try:
        seal = read_seal(seals[0])
    except CunguanError as error:
        return SealReport(errors=[f"电子印章无法解析：{error.message}"]), None
    errors = seal_problems(seal, signer=certificate, at=at, makers=makers)
    if len(seals) > 1:
        errors.append("一个签名只能携带一枚电子印章")
    if not organisation:
        errors.append("个人签名不使用电子印章：签名证书不是机构证书")
    return _report(seal, errors), None
