"""RFC 3161 structures with the ShangMi algorithms: requests, replies and the signed token (a CMS SignedData whose
content is a TSTInfo), built and read with asn1crypto. Hash: SM3 (1.2.156.10197.1.401); signature: SM2-with-SM3
(1.2.156.10197.1.501) with the default SM2 user id. No Flask, no database: the authority and the client use it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import cms, core, tsp, x509

from app.crypto import asn1 as sm_oids
from app.crypto import sm2_sign, sm3
from app.platform.errors import CryptoError

QUERY_CONTENT_TYPE = "application/timestamp-query"
REPLY_CONTENT_TYPE = "application/timestamp-reply"
SM3_DIGEST_SIZE = 32
# The default TSA policy: an OID in the UUID arc (ITU-T X.667), ours alone; `--policy` / CUNGUAN_TSA_POLICY change it.
DEFAULT_POLICY_OID = "2.25.303389899883178440457502995608021077000"
TIME_STAMPING_PURPOSE = "time_stamping"  # extendedKeyUsage id-kp-timeStamping (1.3.6.1.5.5.7.3.8)


class TimeStampResp(core.Sequence):
    """RFC 3161 TimeStampResp; asn1crypto's own makes the token mandatory, which a rejection does not carry."""

    _fields = [("status", tsp.PKIStatusInfo), ("time_stamp_token", cms.ContentInfo, {"optional": True})]  # noqa: RUF012 - asn1crypto reads a list here


def new_nonce() -> int:
    """A random 64-bit nonce (positive), as clients put in requests."""
    return secrets.randbits(63) | 1


def build_request(
    digest: bytes, *, nonce: int | None = None, policy: str | None = None, cert_req: bool = True
) -> bytes:
    """A DER TimeStampReq for an SM3 `digest`."""
    if len(digest) != SM3_DIGEST_SIZE:
        raise CryptoError("时间戳请求的摘要必须是 32 字节的 SM3 摘要", code="TSA_BAD_DIGEST")
    request: dict[str, object] = {
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": sm_oids.SM3_NAME}, "hashed_message": digest},
        "cert_req": cert_req,
    }
    if nonce is not None:
        request["nonce"] = nonce
    if policy is not None:
        request["req_policy"] = policy
    return tsp.TimeStampReq(request).dump()


def rejection(failure: str, text: str) -> bytes:
    """A DER TimeStampResp refusing the request: PKIStatus rejection, the PKIFailureInfo bit `failure`."""
    status = {"status": "rejection", "status_string": [text], "fail_info": {failure}}
    return TimeStampResp({"status": status}).dump()


@dataclass(frozen=True)
class Stamp:
    """What one token states; `serial` unique per authority, `gen_time` UTC."""

    digest: bytes
    serial: int
    gen_time: datetime
    policy: str
    nonce: int | None
    accuracy_ms: int


@dataclass(frozen=True)
class SignerParts:
    """What every token of one TSA certificate repeats, encoded once (DER): the TSA's name, the certificate's
    signingCertificateV2 attribute, the signer identifier, the certificates sent with the token. Parsing these
    back is far cheaper than building them again, which matters for a service stamping every signature."""

    tsa_name: bytes
    signing_certificate: bytes
    sid: bytes
    certificates: tuple[bytes, ...]

    @classmethod
    def of(cls, certificate: x509.Certificate, chain: list[x509.Certificate] | None = None) -> SignerParts:
        essid = {
            "hash_algorithm": {"algorithm": sm_oids.SM3_NAME},
            "cert_hash": sm3(certificate.dump()),
            "issuer_serial": {
                "issuer": [x509.GeneralName(name="directory_name", value=certificate.issuer)],
                "serial_number": certificate.serial_number,
            },
        }
        issuer_and_serial = {"issuer": certificate.issuer, "serial_number": certificate.serial_number}
        return cls(
            x509.GeneralName(name="directory_name", value=certificate.subject).dump(),
            cms.CMSAttribute({"type": "signing_certificate_v2", "values": [{"certs": [essid]}]}).dump(),
            cms.SignerIdentifier({"issuer_and_serial_number": issuer_and_serial}).dump(),
            tuple(item.dump() for item in [certificate, *(chain or [])]),
        )


def tst_info(stamp: Stamp, parts: SignerParts) -> tsp.TSTInfo:
    seconds, millis = divmod(stamp.accuracy_ms, 1000)
    accuracy = {key: value for key, value in (("seconds", seconds), ("millis", millis)) if value}
    info: dict[str, object] = {
        "version": "v1",
        "policy": stamp.policy,
        "message_imprint": {"hash_algorithm": {"algorithm": sm_oids.SM3_NAME}, "hashed_message": stamp.digest},
        "serial_number": stamp.serial,
        "gen_time": stamp.gen_time.astimezone(UTC),
        "accuracy": accuracy,
        "ordering": False,
        "tsa": x509.GeneralName.load(parts.tsa_name),
    }
    if stamp.nonce is not None:
        info["nonce"] = stamp.nonce
    return tsp.TSTInfo(info)


def _signed_attributes(info_der: bytes, parts: SignerParts) -> cms.CMSAttributes:
    """content type, message digest and the RFC 5816 signingCertificateV2 (SM3 of the TSA certificate)."""
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [sm3(info_der)]}),
        cms.CMSAttribute.load(parts.signing_certificate),
    ]
    return cms.CMSAttributes(sorted(attributes, key=lambda attribute: attribute.dump()))  # DER SET OF order


def sign_token(
    info: tsp.TSTInfo, private_key_pem: bytes, parts: SignerParts, with_certificates: bool
) -> cms.ContentInfo:
    """The TimeStampToken: a SignedData (v3) over the DER TSTInfo, signed with SM2-with-SM3; with the TSA's
    certificate and its chain when `with_certificates` (the request's certReq)."""
    info_der = info.dump()
    signed_attrs = _signed_attributes(info_der, parts)
    signer = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier.load(parts.sid),
            "digest_algorithm": {"algorithm": sm_oids.SM3_NAME},
            "signed_attrs": signed_attrs,
            "signature_algorithm": {"algorithm": sm_oids.SM2_WITH_SM3_NAME},
            "signature": sm2_sign(private_key_pem, signed_attrs.dump()),
        }
    )
    signed_data: dict[str, object] = {
        "version": "v3",
        "digest_algorithms": [{"algorithm": sm_oids.SM3_NAME}],
        "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(info_der)},
        "signer_infos": [signer],
    }
    if with_certificates:
        signed_data["certificates"] = [x509.Certificate.load(der) for der in parts.certificates]
    return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})


def granted(token: cms.ContentInfo) -> bytes:
    return TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()


def token_info(token: cms.ContentInfo) -> tsp.TSTInfo:
    """The TSTInfo a token carries (CryptoError TSA_BAD_TOKEN when it is no timestamp token)."""
    try:
        if token["content_type"].native != "signed_data":
            raise ValueError("not signed data")
        encapsulated = token["content"]["encap_content_info"]
        if encapsulated["content_type"].native != "tst_info":
            raise ValueError("not a TSTInfo")
        info = tsp.TSTInfo.load(encapsulated["content"].contents)
        _ = info.native  # parse everything now: a malformed token fails here, not later
        return info
    except (ValueError, TypeError, KeyError) as error:
        raise CryptoError("时间戳令牌格式无效", code="TSA_BAD_TOKEN", details=str(error)) from error


def read_reply(reply_der: bytes) -> tuple[str, str, cms.ContentInfo | None]:
    """(PKIStatus, status text and failure bits, the token if any) of a DER TimeStampResp."""
    try:
        reply = TimeStampResp.load(reply_der, strict=True)
        status = reply["status"]
        texts = [str(text) for text in (status["status_string"].native or [])]
        failures = sorted(status["fail_info"].native or []) if status["fail_info"].native else []
        token = reply["time_stamp_token"] if reply["time_stamp_token"].native is not None else None
        return status["status"].native, "；".join(texts + failures), token
    except (ValueError, TypeError, KeyError) as error:
        raise CryptoError("时间戳服务的应答无法解析", code="TSA_BAD_REPLY", details=str(error)) from error
