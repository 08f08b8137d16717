"""The ASN.1 of a GB/T 38540-2019 electronic seal (version 4), in asn1crypto, and the CMS signed attribute that
carries one in a signature.

    SES_Seal ::= SEQUENCE { esealInfo SES_SealInfo, cert OCTET STRING (the maker's certificate),
                            signAlgID OBJECT IDENTIFIER, signedValue BIT STRING }
    SES_SealInfo ::= SEQUENCE { header SES_Header, esID IA5String, property SES_ESPropertyInfo,
                                picture SES_ESPictrueInfo, extDatas ExtensionDatas OPTIONAL }
    SES_Header ::= SEQUENCE { ID IA5String ("ES"), version INTEGER (4), Vid IA5String }
    SES_ESPropertyInfo ::= SEQUENCE { type INTEGER, name UTF8String, certListType INTEGER, certList SES_CertList,
                                      createDate, validStart, validEnd GeneralizedTime }
    SES_CertList ::= CHOICE { certs SEQUENCE OF OCTET STRING, certDigestList SEQUENCE OF CertDigestObj }
    SES_ESPictrueInfo ::= SEQUENCE { type IA5String, data OCTET STRING, width INTEGER, height INTEGER } (mm)

SES_CertList's two alternatives have the same tag: certListType (1 certificates, 2 digests) says which one it is.
The spelling "Pictrue" is the standard's. Checked against ofdrw (org.ofdrw.gm.ses.v4) and an OpenSSL-based
verifier (gm_0031_38540_verifier): the maker signs the DER of SES_SealInfo.
"""

from __future__ import annotations

from typing import Any, ClassVar

from asn1crypto import cms, core

from app.crypto import asn1 as _sm_oids  # noqa: F401  (registers the SM algorithm names first)

SES_SEAL_VERSION = 4
HEADER_ID = "ES"
CERT_LIST_CERTIFICATES = 1
CERT_LIST_DIGESTS = 2
ORGANISATION_SEAL = 1  # 单位印章 (2: 个人印章)
# No GB/T 38540 or GM/T 0031 OID names a CMS attribute holding an SES_Seal: ours, in the 2.25 (UUID) arc like the
# TSA's default policy. A signed attribute, so the signer's SM2 signature covers the seal it carries.
SES_SEAL_ATTRIBUTE_OID = "2.25.323927005802906431955869113963256586233"
SES_SEAL_ATTRIBUTE = "ses_seal"


class SesHeader(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("id", core.IA5String),
        ("version", core.Integer),
        ("vid", core.IA5String),
    ]


class CertInfoList(core.SequenceOf):
    _child_spec = core.OctetString


class CertDigestObj(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [("type", core.PrintableString), ("value", core.OctetString)]


class CertDigestList(core.SequenceOf):
    _child_spec = CertDigestObj


class SesEsPropertyInfo(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("cert_list_type", core.Integer),
        ("cert_list", core.Any),
        ("create_date", core.GeneralizedTime),
        ("valid_start", core.GeneralizedTime),
        ("valid_end", core.GeneralizedTime),
    ]

    def _cert_list_spec(self) -> type[core.Asn1Value]:
        return CertDigestList if self["cert_list_type"].native == CERT_LIST_DIGESTS else CertInfoList

    _spec_callbacks: ClassVar[dict[str, Any]] = {"cert_list": _cert_list_spec}


class SesEsPictureInfo(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("type", core.IA5String),
        ("data", core.OctetString),
        ("width", core.Integer),
        ("height", core.Integer),
    ]


class ExtData(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("extn_id", core.ObjectIdentifier),
        ("critical", core.Boolean, {"default": False}),
        ("extn_value", core.OctetString),
    ]


class ExtensionDatas(core.SequenceOf):
    _child_spec = ExtData


class SesSealInfo(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("header", SesHeader),
        ("es_id", core.IA5String),
        ("property", SesEsPropertyInfo),
        ("picture", SesEsPictureInfo),
        ("ext_datas", ExtensionDatas, {"optional": True}),
    ]


class SesSeal(core.Sequence):
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("eseal_info", SesSealInfo),
        ("cert", core.OctetString),
        ("sign_alg_id", core.ObjectIdentifier),
        ("signed_value", core.OctetBitString),
    ]


class SetOfSesSeal(core.SetOf):
    _child_spec = SesSeal


cms.CMSAttributeType._map[SES_SEAL_ATTRIBUTE_OID] = SES_SEAL_ATTRIBUTE
if cms.CMSAttributeType._reverse_map is not None:
    cms.CMSAttributeType._reverse_map[SES_SEAL_ATTRIBUTE] = SES_SEAL_ATTRIBUTE_OID
cms.CMSAttribute._oid_specs[SES_SEAL_ATTRIBUTE] = SetOfSesSeal


def seal_attribute(seal_der: bytes) -> cms.CMSAttribute:
    """The signed attribute carrying `seal_der` (an SES_Seal) in a CMS SignerInfo."""
    return cms.CMSAttribute({"type": SES_SEAL_ATTRIBUTE, "values": [SesSeal.load(seal_der)]})
