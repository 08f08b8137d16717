"""Check an RFC 3161 timestamp token offline: its SM2 signature over the signed attributes, the digest of its
TSTInfo, the TSA certificate it names (signingCertificateV2, extendedKeyUsage timeStamping, valid at genTime,
one the verifier trusts) and its message imprint against the stamped bytes. Never raises on bad input."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asn1crypto import cms, pem, x509

from app.crypto import asn1 as sm_oids
from app.crypto import sm2_verify, sm3
from app.platform.errors import CryptoError
from app.tsa.protocol import TIME_STAMPING_PURPOSE, token_info


@dataclass(frozen=True)
class TimestampCheck:
    """What a token says and what is wrong with it; `valid` only without errors."""

    gen_time: datetime | None = None
    authority: str | None = None  # the TSA certificate's common name
    serial: int | None = None
    policy: str | None = None
    errors: list[str] = field(default_factory=list)
    imprint_matches: bool = False  # the token stamps the bytes it is checked against
    signature_valid: bool = False  # the TSA's SM2 signature over the token verifies
    trusted: bool = False  # the TSA's certificate is one the verifier trusts (or none was named)

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.gen_time.isoformat() if self.gen_time else None,
            "authority": self.authority,
            "serial": self.serial,
            "policy": self.policy,
            "valid": self.valid,
            "errors": self.errors,
        }


def _attribute(signer: cms.SignerInfo, name: str) -> Any:
    for attribute in signer["signed_attrs"]:
        if attribute["type"].native == name:
            return attribute["values"][0]
    return None


def _certificate(signed_data: cms.SignedData, signer: cms.SignerInfo) -> x509.Certificate | None:
    sid = signer["sid"]
    if sid.name != "issuer_and_serial_number":
        return None
    wanted = sid.chosen
    for choice in signed_data["certificates"] or []:
        certificate = choice.chosen
        if (
            isinstance(certificate, x509.Certificate)
            and certificate.serial_number == wanted["serial_number"].native
            and certificate.issuer == wanted["issuer"]
        ):
            return certificate
    return None


def _issued_by(certificate: x509.Certificate, issuer_der: bytes) -> bool:
    """`certificate` carries an SM2-with-SM3 signature of the CA `issuer_der` (DER), whose subject is its issuer."""
    try:
        issuer = x509.Certificate.load(issuer_der)
        if issuer.subject != certificate.issuer or not issuer.ca:
            return False
        algorithm = certificate["signature_algorithm"]["algorithm"].dotted
        public_key_pem = pem.armor("PUBLIC KEY", issuer.public_key.dump())
        tbs, signature = certificate["tbs_certificate"].dump(), certificate["signature_value"].native
        return algorithm == sm_oids.SM2_WITH_SM3_OID and sm2_verify(public_key_pem, tbs, signature)
    except (ValueError, TypeError, KeyError, CryptoError):
        return False


def _trusted(certificate: x509.Certificate, trusted: Sequence[bytes]) -> bool:
    return certificate.dump() in trusted or any(_issued_by(certificate, issuer) for issuer in trusted)


def _certificate_problems(certificate: x509.Certificate, signer: cms.SignerInfo, gen_time: datetime) -> list[str]:
    problems = []
    usage = certificate.extended_key_usage_value
    critical = any(
        extension["extn_id"].native == "extended_key_usage" and extension["critical"].native
        for extension in certificate["tbs_certificate"]["extensions"]
    )
    if usage is None or usage.native != [TIME_STAMPING_PURPOSE] or not critical:
        problems.append("时间戳服务证书的扩展密钥用途不是（关键的）timeStamping")
    if not certificate.not_valid_before <= gen_time <= certificate.not_valid_after:
        problems.append("时间戳时间不在时间戳服务证书的有效期内")
    ess = _attribute(signer, "signing_certificate_v2")
    if ess is None:
        problems.append("时间戳令牌缺少 signingCertificateV2 属性")
    else:
        first = ess["certs"][0]
        algorithm = first["hash_algorithm"]["algorithm"].dotted
        if algorithm != sm_oids.SM3_OID or first["cert_hash"].native != sm3(certificate.dump()):
            problems.append("时间戳令牌声明的服务证书与所附证书不一致")
    return problems


def check_token(
    token: cms.ContentInfo | bytes, stamped: bytes, trusted: Sequence[bytes] | None = None
) -> TimestampCheck:
    """The check of `token` (DER or parsed) over `stamped` (for a signature timestamp: the signature value).

    `trusted`: DER certificates the verifier trusts: the TSA's own, or the CA that issued it (SM2-signed, one
    level: the platform root issues the TSA's certificate); None accepts the certificate inside the token."""
    return check_token_digest(token, sm3(stamped), trusted)


def check_token_digest(
    token: cms.ContentInfo | bytes, digest: bytes, trusted: Sequence[bytes] | None = None
) -> TimestampCheck:
    """`check_token` for an SM3 `digest` of the stamped bytes."""
    try:
        return _check(token if isinstance(token, cms.ContentInfo) else cms.ContentInfo.load(token), digest, trusted)
    except (CryptoError, ValueError, TypeError, KeyError, IndexError) as error:
        reason = error.message if isinstance(error, CryptoError) else str(error)
        return TimestampCheck(errors=[f"时间戳令牌无法解析：{reason}"])


def _check(token: cms.ContentInfo, digest_expected: bytes, trusted: Sequence[bytes] | None) -> TimestampCheck:
    info = token_info(token)
    signed_data = token["content"]
    signer = signed_data["signer_infos"][0]
    gen_time = info["gen_time"].native
    errors = []
    imprint = info["message_imprint"]
    sm3_imprint = imprint["hash_algorithm"]["algorithm"].dotted == sm_oids.SM3_OID
    imprint_matches = sm3_imprint and imprint["hashed_message"].native == digest_expected
    if not sm3_imprint:
        errors.append("时间戳的摘要算法不是 SM3")
    elif not imprint_matches:
        errors.append("时间戳的消息摘要与所盖时间的内容不一致（时间戳不属于这个签名或文件）")
    algorithms = (signer["digest_algorithm"]["algorithm"].dotted, signer["signature_algorithm"]["algorithm"].dotted)
    content_type = _attribute(signer, "content_type")
    digest = _attribute(signer, "message_digest")
    if algorithms != (sm_oids.SM3_OID, sm_oids.SM2_WITH_SM3_OID):
        errors.append("时间戳签名算法不是 SM2/SM3")
    if content_type is None or content_type.native != "tst_info":
        errors.append("时间戳令牌的内容类型属性不是 TSTInfo")
    if digest is None or digest.native != sm3(signed_data["encap_content_info"]["content"].contents):
        errors.append("时间戳内容与其签名摘要不一致（时间戳被篡改）")
    certificate = _certificate(signed_data, signer)
    authority, signature_valid, trusted_certificate = None, False, False
    if certificate is None:
        errors.append("时间戳令牌中缺少时间戳服务证书")
    else:
        authority = str(certificate.subject.native.get("common_name", certificate.subject.human_friendly))
        signed_attrs = b"\x31" + signer["signed_attrs"].dump()[1:]  # [0] IMPLICIT in SignerInfo, a SET OF when signed
        public_key_pem = pem.armor("PUBLIC KEY", certificate.public_key.dump())
        signature_valid = sm2_verify(public_key_pem, signed_attrs, signer["signature"].native)
        if not signature_valid:
            errors.append("时间戳签名验证失败（时间戳被伪造或篡改）")
        errors.extend(_certificate_problems(certificate, signer, gen_time))
        trusted_certificate = trusted is None or _trusted(certificate, trusted)
        if not trusted_certificate:
            errors.append("时间戳服务证书不是受信任的时间戳服务证书")
    policy = info["policy"].dotted
    serial = info["serial_number"].native
    return TimestampCheck(
        gen_time, authority, serial, policy, errors, imprint_matches, signature_valid, trusted_certificate
    )
