"""Certificate path validation for signatures: from the signer's certificate up to a trust anchor, each link's
SM2 signature, CA flag and key usage, every certificate's validity at the signing time, the signer's key usage
for its purpose, and revocation by the issuers' CRLs. Every finding is a sentence in Chinese. Pure.

    trust = TrustStore.of([root_pem], crls=[crl_pem])
    result = validate_path(signer, other_certificates, trust, at=[signing_time])
    result.trusted, result.path_names, result.problems, result.revoked
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from asn1crypto import pem, x509

from app.crypto import asn1 as sm_oids
from app.crypto import sm2_verify
from app.pki.certificates import is_self_issued, load_certificate, serial_hex
from app.pki.crl import Revocation, RevocationList, read_crl
from app.pki.names import display_name
from app.platform.errors import CunguanError

Purpose = Literal["document_signing", "timestamping"]
_SIGNING_USAGES = {"digital_signature", "non_repudiation"}
_MAX_DEPTH = 6


@dataclass(frozen=True)
class TrustStore:
    """Trust anchors (the platform root; certificates pinned one by one, such as a bank's imported self-signed
    one from before the CA) and CRL bytes; CRLs are checked against their issuer when used."""

    anchors: tuple[x509.Certificate, ...]
    crls: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, anchor_pems: Iterable[bytes], crls: Iterable[bytes] = ()) -> TrustStore:
        anchors: list[x509.Certificate] = []
        for item in anchor_pems:
            try:
                anchors.append(load_certificate(item))
            except CunguanError:
                continue  # an unreadable anchor anchors nothing
        return cls(tuple(anchors), tuple(crls))

    def is_anchor(self, certificate: x509.Certificate) -> bool:
        return any(anchor.dump() == certificate.dump() for anchor in self.anchors)


@dataclass(frozen=True)
class PathResult:
    path: list[x509.Certificate] = field(default_factory=list)  # signer first; ends at an anchor when trusted
    trusted: bool = False
    problems: list[str] = field(default_factory=list)  # everything but "untrusted" (that is `trusted`)
    untrusted_reason: str | None = None
    revoked: Revocation | None = None

    @property
    def path_names(self) -> list[str]:
        return [display_name(certificate.subject) for certificate in self.path]

    @property
    def valid(self) -> bool:
        return self.trusted and not self.problems


def public_key_pem(certificate: x509.Certificate) -> bytes:
    return pem.armor("PUBLIC KEY", certificate.public_key.dump())


def signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer`'s key made `certificate`'s SM2-with-SM3 signature (GM/T 0009 default signer id)."""
    if certificate.issuer != issuer.subject or certificate["signature_algorithm"]["algorithm"].dotted != (
        sm_oids.SM2_WITH_SM3_OID
    ):
        return False
    try:
        tbs = certificate["tbs_certificate"].dump()
        return sm2_verify(public_key_pem(issuer), tbs, certificate["signature_value"].native)
    except (CunguanError, ValueError, TypeError):
        return False


def _issuer_of(certificate: x509.Certificate, candidates: Sequence[x509.Certificate]) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate.dump() != certificate.dump() and signed_by(certificate, candidate):
            return candidate
    return None


def build_path(
    signer: x509.Certificate, others: Sequence[x509.Certificate], trust: TrustStore
) -> tuple[list[x509.Certificate], bool, str | None]:
    """(path from the signer up, whether it ends at an anchor, why not). Issuers come from the anchors first,
    then from the certificates the signature carries; a self-signed certificate is trusted only as an anchor."""
    path = [signer]
    current = signer
    while not trust.is_anchor(current):
        if len(path) > _MAX_DEPTH:
            return path, False, "证书链过长"
        issuer = _issuer_of(current, [*trust.anchors, *others])
        if issuer is None:
            if is_self_issued(current):
                return path, False, f"证书「{display_name(current.subject)}」是自签名证书，不在受信任的根证书之列"
            return path, False, f"证书签发者未知或证书链断裂：签发者「{display_name(current.issuer)}」不受信任"
        path.append(issuer)
        current = issuer
    return path, True, None


def _validity_problems(path: list[x509.Certificate], at: Sequence[datetime]) -> list[str]:
    problems = []
    for index, certificate in enumerate(path):
        not_before, not_after = certificate.not_valid_before, certificate.not_valid_after
        for moment in at:
            if not_before <= moment <= not_after:
                continue
            span = f"（{not_before.isoformat()} 至 {not_after.isoformat()}）"
            if index == 0:
                state = "尚未生效" if moment < not_before else "已过期"
                problems.append(f"签署时间 {moment.isoformat()} 不在证书有效期内{span}：证书{state}")
            else:
                name = display_name(certificate.subject)
                problems.append(f"签署时间 {moment.isoformat()} 不在签发者证书「{name}」的有效期内{span}")
    return problems


def _issuer_problems(path: list[x509.Certificate]) -> list[str]:
    problems = []
    for issuer in path[1:]:
        usage = issuer.key_usage_value
        if not issuer.ca or (usage is not None and "key_cert_sign" not in usage.native):
            problems.append(f"签发者证书「{display_name(issuer.subject)}」不是 CA 证书，无权签发证书")
    return problems


def purpose_problems(certificate: x509.Certificate, purpose: Purpose) -> list[str]:
    """The signer's key usage for `purpose`: a document signature needs digitalSignature or nonRepudiation and
    no extended key usage that excludes it (a TSA certificate signs timestamps only); a timestamp needs
    extendedKeyUsage timeStamping, critical and alone (RFC 3161 §2.3)."""
    problems = []
    usage = certificate.key_usage_value
    if usage is not None and not _SIGNING_USAGES & set(usage.native):
        problems.append("签名证书的密钥用途不允许数字签名")
    if certificate.ca:
        problems.append("CA 证书不能用于签名（证书用途错误）")
    extended = certificate.extended_key_usage_value
    extended_usages = set(extended.native) if extended is not None else set()
    if purpose == "timestamping":
        critical = "extended_key_usage" in certificate.critical_extensions
        if extended_usages != {"time_stamping"} or not critical:
            problems.append("时间戳证书必须且只能有关键扩展密钥用途 timeStamping")
    elif extended_usages and not extended_usages - {"time_stamping"}:
        problems.append("证书的扩展密钥用途只允许签发时间戳，不能签署文件（证书用途错误）")
    return problems


def _revocation(path: list[x509.Certificate], trust: TrustStore) -> tuple[Revocation | None, list[str]]:
    """The first revoked certificate of the path (by a CRL its issuer signed), and CRLs that could not be used."""
    lists: list[tuple[x509.Certificate, RevocationList]] = []
    problems = []
    issuers = path[1:]
    for crl_bytes in trust.crls:
        for issuer in issuers:
            try:
                lists.append((issuer, read_crl(crl_bytes, issuer)))
            except CunguanError as error:
                if error.code != "CRL_ISSUER_MISMATCH":
                    problems.append(f"{display_name(issuer.subject)} 的证书吊销列表无效：{error.message}")
    for certificate, issuer in zip(path, issuers, strict=False):
        for crl_issuer, revocation_list in lists:
            revoked = revocation_list.revoked.get(certificate.serial_number)
            if crl_issuer.dump() == issuer.dump() and revoked is not None:
                return revoked, problems
    return None, problems


def validate_path(
    signer: x509.Certificate,
    others: Sequence[x509.Certificate],
    trust: TrustStore,
    *,
    at: Sequence[datetime],
    purpose: Purpose = "document_signing",
) -> PathResult:
    """Everything wrong with `signer` for a signature made at the times `at` (aware datetimes: the CMS signing
    time, the PDF's /M, later a timestamp's genTime). A revoked certificate is refused whatever the time: a
    signing time that only the signer states proves nothing (trusted time comes with the TSA)."""
    path, trusted, untrusted_reason = build_path(signer, others, trust)
    problems = [*_issuer_problems(path), *_validity_problems(path, at), *purpose_problems(signer, purpose)]
    revoked, crl_problems = _revocation(path, trust) if trusted else (None, [])
    problems.extend(crl_problems)
    if revoked is not None:
        holder = next(c for c in path if c.serial_number == revoked.serial)
        problems.append(
            f"证书「{display_name(holder.subject)}」（序列号 {serial_hex(holder)}）已于 "
            f"{revoked.revoked_at.isoformat()} 被吊销，原因：{revoked.reason_label}"
        )
    return PathResult(path, trusted, list(dict.fromkeys(problems)), untrusted_reason, revoked)
