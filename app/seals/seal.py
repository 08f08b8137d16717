"""Make, read and check a GB/T 38540 seal (SES_Seal v4). The seal maker (制章人) is the platform CA: its root
signs the DER of SES_SealInfo with SM2-with-SM3 (GM/T 0009's default user id, like every signature here). A seal
names its holder (name), lists the holder's signing certificate (certListType 1) and is valid from validStart to
validEnd, aligned with that certificate's validity. Pure: no Flask, no files."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import pem, x509

from app.crypto import asn1 as sm_oids
from app.crypto import sm2_sign, sm2_verify
from app.pki.certificates import CertificateAuthority, load_certificate
from app.pki.chain import TrustStore, signed_by
from app.pki.names import display_name
from app.platform.errors import ValidationError
from app.seals.structures import (
    CERT_LIST_CERTIFICATES,
    HEADER_ID,
    ORGANISATION_SEAL,
    SES_SEAL_VERSION,
    CertInfoList,
    SesSeal,
    SesSealInfo,
)

VENDOR_ID = "CUNGUAN"  # SES_Header.Vid: the maker's software
SEAL_TYPES = {1: "单位印章", 2: "个人印章"}


@dataclass(frozen=True)
class Picture:
    """The seal's image (SES_ESPictrueInfo): its type ("PNG"), bytes, and printed size in millimetres."""

    kind: str
    data: bytes
    width_mm: int
    height_mm: int


@dataclass(frozen=True)
class Seal:
    """A decoded SES_Seal: what it says, and what the maker's signature covers (`signed_info`, DER)."""

    der: bytes
    es_id: str
    name: str
    seal_type: int
    cert_list_type: int
    signer_certificates: tuple[bytes, ...]  # DER, certListType 1
    created: datetime
    valid_start: datetime
    valid_end: datetime
    picture: Picture
    maker: x509.Certificate
    sign_algorithm: str
    signed_value: bytes
    signed_info: bytes

    @property
    def maker_name(self) -> str:
        return display_name(self.maker.subject)


def _generalized(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValidationError("印章有效期必须带时区（UTC）", code="INVALID_SEAL")
    return moment.astimezone(UTC).replace(microsecond=0)


def make_seal(
    maker: CertificateAuthority,
    *,
    name: str,
    signer_certificate_pem: bytes,
    picture: Picture,
    created: datetime,
    es_id: str | None = None,
) -> bytes:
    """An organisation's seal (type 1, 单位印章) for the holder of `signer_certificate_pem`, valid as long as
    that certificate, signed by `maker` (the platform CA); DER. `es_id` defaults to a fresh UUID (hex)."""
    signer = load_certificate(signer_certificate_pem)
    if not name.strip():
        raise ValidationError("电子印章缺少名称", code="INVALID_SEAL")
    info = SesSealInfo(
        {
            "header": {"id": HEADER_ID, "version": SES_SEAL_VERSION, "vid": VENDOR_ID},
            "es_id": es_id or uuid.uuid4().hex,
            "property": {
                "type": ORGANISATION_SEAL,
                "name": name,
                "cert_list_type": CERT_LIST_CERTIFICATES,
                "cert_list": CertInfoList([signer.dump()]),
                "create_date": _generalized(created),
                "valid_start": _generalized(signer.not_valid_before),
                "valid_end": _generalized(signer.not_valid_after),
            },
            "picture": {
                "type": picture.kind,
                "data": picture.data,
                "width": picture.width_mm,
                "height": picture.height_mm,
            },
        }
    )
    signed_value = sm2_sign(maker.private_key_pem, info.dump())
    seal = SesSeal(
        {
            "eseal_info": info,
            "cert": maker.certificate.dump(),
            "sign_alg_id": sm_oids.SM2_WITH_SM3_OID,
            "signed_value": signed_value,
        }
    )
    return seal.dump()


def read_seal(der: bytes) -> Seal:
    """The seal in `der` (ValidationError INVALID_SEAL when it is no GB/T 38540 v4 seal)."""
    try:
        seal = SesSeal.load(der, strict=True)
        info = seal["eseal_info"]
        header, properties, picture = info["header"].native, info["property"], info["picture"].native
        list_type = properties["cert_list_type"].native
        certificates = tuple(item.native for item in properties["cert_list"]) if list_type == 1 else ()
        decoded = Seal(
            der=der,
            es_id=info["es_id"].native,
            name=properties["name"].native,
            seal_type=properties["type"].native,
            cert_list_type=list_type,
            signer_certificates=certificates,
            created=properties["create_date"].native,
            valid_start=properties["valid_start"].native,
            valid_end=properties["valid_end"].native,
            picture=Picture(picture["type"], picture["data"], picture["width"], picture["height"]),
            maker=load_certificate(seal["cert"].native),
            sign_algorithm=seal["sign_alg_id"].dotted,
            signed_value=seal["signed_value"].native,
            signed_info=info.dump(),
        )
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ValidationError("无法解析电子印章（GB/T 38540）", code="INVALID_SEAL", details=str(error)) from error
    if header["id"] != HEADER_ID or header["version"] != SES_SEAL_VERSION:
        raise ValidationError(
            "不是 GB/T 38540 第 4 版电子印章",
            code="INVALID_SEAL",
            details={"id": header["id"], "version": header["version"]},
        )
    return decoded


def maker_signature_valid(seal: Seal) -> bool:
    """The maker's SM2-with-SM3 signature over the DER of SES_SealInfo, with the key of the certificate it carries."""
    if seal.sign_algorithm != sm_oids.SM2_WITH_SM3_OID:
        return False
    return sm2_verify(pem.armor("PUBLIC KEY", seal.maker.public_key.dump()), seal.signed_info, seal.signed_value)


def trusted_maker(maker: x509.Certificate, signer: x509.Certificate, makers: TrustStore) -> bool:
    """A CA among the anchors (the platform root), or the CA that issued a signer's certificate pinned as an anchor
    (a verification that trusts the seal certificate alone)."""
    if not maker.ca:
        return False
    return makers.is_anchor(maker) or (makers.is_anchor(signer) and signed_by(signer, maker))


def seal_problems(seal: Seal, *, signer: x509.Certificate, at: datetime | None, makers: TrustStore | None) -> list[str]:
    """Why `seal` cannot stand for `signer`'s signature made `at` (the trusted time, else the stated one), in
    Chinese; empty when it can. `makers`: the trust anchors, of which a CA certificate must be the maker (None:
    the maker the seal carries is taken as it is, like a verification without anchors; `trusted_maker`)."""
    problems = []
    if not maker_signature_valid(seal):
        problems.append("电子印章的制章者签名验证失败（印章被篡改或伪造）")
    if makers is not None and not trusted_maker(seal.maker, signer, makers):
        problems.append(f"电子印章的制章者“{seal.maker_name}”不是受信任的平台 CA")
    if at is None:
        problems.append("签名未注明签署时间，无法核对电子印章有效期")
    elif not seal.valid_start <= at <= seal.valid_end:
        problems.append("签署时电子印章不在有效期内")
    if seal.cert_list_type != CERT_LIST_CERTIFICATES or signer.dump() not in seal.signer_certificates:
        problems.append("电子印章的签章者证书列表中没有本签名的证书（印章不属于签名者）")
    if seal.seal_type != ORGANISATION_SEAL:
        problems.append("机构签名须使用单位印章（电子印章类型不是单位印章）")
    return problems
