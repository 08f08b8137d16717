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
from app.crypto.cms_signer import signed_attribute, signer_certificate
from app.pki.chain import TrustStore, validate_path
from app.platform.errors import CryptoError
from app.tsa.protocol import token_info


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


Trust = Sequence[bytes] | TrustStore | None


def _trust_store(trusted: Trust, certificate: x509.Certificate) -> TrustStore:
    """Anchors for the TSA's certificate: a TrustStore as given (root and CRL: revocation applies), certificates
    (PEM or DER: the TSA's own, or the CA that issued it), or - when None - the token's own certificate."""
    if isinstance(trusted, TrustStore):
        return trusted
    if trusted is None:
        return TrustStore((certificate,))
    return TrustStore.of(trusted)


def _ess_problems(certificate: x509.Certificate, signer: cms.SignerInfo) -> list[str]:
    """RFC 5816 signingCertificateV2 must name the certificate that comes with the token (by its SM3 hash)."""
    ess = signed_attribute(signer, "signing_certificate_v2")
    if ess is None:
        return ["时间戳令牌缺少 signingCertificateV2 属性"]
    first = ess["certs"][0]
    if first["hash_algorithm"]["algorithm"].dotted != sm_oids.SM3_OID or first["cert_hash"].native != sm3(
        certificate.dump()
    ):
        return ["时间戳令牌声明的服务证书与所附证书不一致"]
    return []


def check_token(token: cms.ContentInfo | bytes, stamped: bytes, trusted: Trust = None) -> TimestampCheck:
    """The check of `token` (DER or parsed) over `stamped` (for a signature timestamp: the signature value).

    `trusted`: a `TrustStore` (the platform root with its CRL: the TSA's certificate path, validity at genTime,
    the timeStamping purpose and revocation are checked by `app.pki.chain.validate_path`), certificates (PEM or
    DER) to anchor on, or None: the certificate inside the token is taken as it is (its purpose and validity are
    still checked)."""
    return check_token_digest(token, sm3(stamped), trusted)


def check_token_digest(token: cms.ContentInfo | bytes, digest: bytes, trusted: Trust = None) -> TimestampCheck:
    """`check_token` for an SM3 `digest` of the stamped bytes."""
    try:
        return _check(token if isinstance(token, cms.ContentInfo) else cms.ContentInfo.load(token), digest, trusted)
    except (CryptoError, ValueError, TypeError, KeyError, IndexError) as error:
        reason = error.message if isinstance(error, CryptoError) else str(error)
        return TimestampCheck(errors=[f"时间戳令牌无法解析：{reason}"])


def _check(token: cms.ContentInfo, digest_expected: bytes, trusted: Trust) -> TimestampCheck:
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
    content_type = signed_attribute(signer, "content_type")
    digest = signed_attribute(signer, "message_digest")
    if algorithms != (sm_oids.SM3_OID, sm_oids.SM2_WITH_SM3_OID):
        errors.append("时间戳签名算法不是 SM2/SM3")
    if content_type is None or content_type.native != "tst_info":
        errors.append("时间戳令牌的内容类型属性不是 TSTInfo")
    if digest is None or digest.native != sm3(signed_data["encap_content_info"]["content"].contents):
        errors.append("时间戳内容与其签名摘要不一致（时间戳被篡改）")
    certificate = signer_certificate(signed_data, signer)
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
        errors.extend(_ess_problems(certificate, signer))
        others = [
            choice.chosen
            for choice in signed_data["certificates"]
            if isinstance(choice.chosen, x509.Certificate) and choice.chosen.dump() != certificate.dump()
        ]
        path = validate_path(
            certificate, others, _trust_store(trusted, certificate), at=[gen_time], purpose="timestamping"
        )
        errors.extend(f"时间戳服务证书：{problem}" for problem in path.problems)
        trusted_certificate = path.trusted
        if not path.trusted:
            errors.append(f"时间戳服务证书不受信任：{path.untrusted_reason or '证书链无法到达受信任的根证书'}")
    policy = info["policy"].dotted
    serial = info["serial_number"].native
    return TimestampCheck(
        gen_time, authority, serial, policy, errors, imprint_matches, signature_valid, trusted_certificate
    )
