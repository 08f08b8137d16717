"""Signature timestamps (RFC 3161 in CMS, RFC 5126 / PAdES): the token a TSA gives for the SM3 digest of a
signature value, carried as the signer's unsigned attribute signatureTimeStampToken (1.2.840.113549.1.9.16.2.14).
Unsigned, so it can be added to a finished signature - ours or the CMS a bank answered - without touching it."""

from __future__ import annotations

from typing import Any

from asn1crypto import cms, core

from app.crypto import asn1 as sm_oids
from app.crypto import sm3
from app.tsa.client import Timestamper
from app.tsa.tokens import TimestampCheck, Trust, check_token, check_token_digest

SIGNATURE_TIMESTAMP = "signature_time_stamp_token"


def _copy(value: core.Sequence, replaced: dict[str, object]) -> dict[str, object]:
    """The fields of `value` that are present, as they were encoded (never re-encoded), with `replaced` put in."""
    kept = {name: value[name] for name, *_ in value._fields if not isinstance(value[name], core.Void)}
    return kept | replaced


def _unsigned(signer: cms.SignerInfo) -> list[cms.CMSAttribute]:
    attributes = signer["unsigned_attrs"]
    return [] if isinstance(attributes, core.Void) else list(attributes)


def add_signature_timestamp(cms_der: bytes, timestamper: Timestamper) -> bytes:
    """`cms_der` (a SignedData with one signer) with a timestamp of its signature value from `timestamper`."""
    content_info = cms.ContentInfo.load(cms_der)
    signed_data = content_info["content"]
    signer = signed_data["signer_infos"][0]
    token = cms.ContentInfo.load(timestamper(sm3(signer["signature"].native)))
    others = [attribute for attribute in _unsigned(signer) if attribute["type"].native != SIGNATURE_TIMESTAMP]
    stamp = cms.CMSAttribute({"type": SIGNATURE_TIMESTAMP, "values": [token]})
    stamped_signer = cms.SignerInfo(_copy(signer, {"unsigned_attrs": cms.CMSAttributes([*others, stamp])}))
    stamped = cms.SignedData(_copy(signed_data, {"signer_infos": cms.SignerInfos([stamped_signer])}))
    return cms.ContentInfo({"content_type": "signed_data", "content": stamped}).dump()


def document_timestamp_fields(contents: bytes, signed_bytes: bytes | None, trusted: Trust) -> dict[str, Any]:
    """What the verifier reports of a /DocTimeStamp (SubFilter ETSI.RFC3161): an RFC 3161 token over the SM3 of
    its byte ranges, the TSA in the place of a signer (`trusted`: the TSA certificates the verifier names)."""
    check = check_token_digest(cms.ContentInfo.load(contents), sm3(signed_bytes or b""), trusted)
    return {
        "intact": signed_bytes is not None and check.imprint_matches,
        "signature_valid": check.signature_valid,
        "trusted": check.trusted,
        "certificate_valid": check.valid,
        "signer_subject": check.authority,
        "signing_time": check.gen_time,
        "digest_algorithm": sm_oids.SM3_OID,
        "signature_algorithm": sm_oids.SM2_WITH_SM3_OID,
        "errors": [f"文档时间戳：{error}" for error in check.errors],
        "timestamp": check,
        "document_timestamp": True,
    }


def signature_timestamp(signer: cms.SignerInfo, trusted: Trust = None) -> TimestampCheck | None:
    """The check of the signer's signature timestamp; None when it has none. `trusted`: DER TSA certificates."""
    tokens = [
        value
        for attribute in _unsigned(signer)
        if attribute["type"].native == SIGNATURE_TIMESTAMP
        for value in attribute["values"]
    ]
    if not tokens:
        return None
    if len(tokens) > 1:
        return TimestampCheck(errors=["签名带有多个时间戳令牌"])
    return check_token(tokens[0], signer["signature"].native, trusted)
