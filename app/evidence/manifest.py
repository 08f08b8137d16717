"""The pack's manifest and its detached signature, pure: every member's path, size and SM3, the deal, when and by
whom the pack was built; signed as a detached CMS (SM2 with SM3, the platform's seal certificate inside, as the PDF
signatures are: `app.pdf.sign.build_cms`); and the signature checked against trusted certificates."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms, pem, x509

from app.crypto import asn1 as sm_oids
from app.crypto import sm2_verify, sm3
from app.crypto.cms_signer import signed_attribute, signer_certificate
from app.evidence.archive import MANIFEST_TIMESTAMP
from app.pdf.sign import build_cms
from app.pki.chain import TrustStore, validate_path

FORMAT = "cunguan-evidence/1"


def manifest_bytes(
    members: dict[str, bytes],
    *,
    deal_id: int,
    deal_no: str,
    built_at: datetime,
    builder: str,
    timestamped: bool = False,
) -> bytes:
    """The manifest of `members` (every member but the manifest's own files), as the pack stores it; `timestamped`:
    an RFC 3161 token over the SM3 of manifest.sig follows as manifest.tsr."""
    listing = [
        {"path": path, "size": len(content), "sm3": sm3(content).hex()} for path, content in sorted(members.items())
    ]
    document = {
        "format": FORMAT,
        "deal": {"id": deal_id, "deal_no": deal_no},
        "built_at": built_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "builder": builder,
        "hash_algorithm": "SM3",
        "members": listing,
        "trusted_time": {"member": MANIFEST_TIMESTAMP, "over": "SM3(manifest.sig)"} if timestamped else None,
    }
    return (json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def sign_manifest(
    manifest: bytes,
    private_key_pem: bytes,
    certificate_pem: bytes,
    signing_time: datetime,
    chain: Sequence[bytes] = (),
) -> bytes:
    """A detached CMS SignedData (DER) over the manifest's SM3, by the platform's seal key; it carries the seal
    certificate and `chain` (PEM: its issuers, the CA root)."""
    certificate = x509.Certificate.load(pem.unarmor(certificate_pem)[2])
    return build_cms(sm3(manifest), private_key_pem, certificate, signing_time, chain)


@dataclass(frozen=True)
class ManifestSignature:
    """What the manifest's signature says: valid or not (with Chinese reasons), the signer and the signing time."""

    valid: bool
    signer: str | None
    signing_time: datetime | None
    problems: list[str]
    signature_value: bytes = b""
    chain: list[str] = field(default_factory=list)  # the signer's certificate path, signer first

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "signer": self.signer,
            "signing_time": self.signing_time.isoformat() if self.signing_time else None,
            "chain": self.chain,
            "problems": self.problems,
        }


def _attribute(signer: cms.SignerInfo, name: str) -> Any:
    value = signed_attribute(signer, name)
    return None if value is None else value.native


def verify_manifest_signature(manifest: bytes, signature_der: bytes, trust: TrustStore) -> ManifestSignature:
    """The detached CMS `signature_der` over `manifest`: its SM3, its SM2 signature, and a signer certificate whose
    path reaches a trust anchor (`trust`: the platform CA root, or a certificate pinned), valid at the signing time,
    made for signing and not revoked by the CRLs `trust` holds. Never raises on bad input."""
    try:
        return _verify(manifest, signature_der, trust)
    except Exception as error:  # a garbled signature is a finding, not a crash
        return ManifestSignature(False, None, None, [f"manifest.sig：签名数据无法解析（{error}）"])


def _verify(manifest: bytes, signature_der: bytes, trust: TrustStore) -> ManifestSignature:
    info = cms.ContentInfo.load(signature_der)
    if info["content_type"].native != "signed_data":
        return ManifestSignature(False, None, None, ["manifest.sig：不是 CMS SignedData"])
    signed_data = info["content"]
    signer = signed_data["signer_infos"][0]
    problems: list[str] = []
    algorithms = (signer["digest_algorithm"]["algorithm"].dotted, signer["signature_algorithm"]["algorithm"].dotted)
    if algorithms != (sm_oids.SM3_OID, sm_oids.SM2_WITH_SM3_OID):
        problems.append("manifest.sig：签名算法不是 SM2/SM3")
    if _attribute(signer, "message_digest") != sm3(manifest):
        problems.append("manifest.json：内容与签名摘要不一致（清单被改动）")
    certificate = signer_certificate(signed_data, signer)
    signing_time = _attribute(signer, "signing_time")
    if certificate is None:
        return ManifestSignature(False, None, signing_time, [*problems, "manifest.sig：缺少签名者证书"])
    signed_attrs = b"\x31" + signer["signed_attrs"].dump()[1:]  # [0] IMPLICIT in SignerInfo, a SET OF when signed
    public_key = pem.armor("PUBLIC KEY", certificate.public_key.dump())
    signature_value = signer["signature"].native
    if not sm2_verify(public_key, signed_attrs, signature_value):
        problems.append("manifest.sig：SM2 签名验证失败")
    others = [
        choice.chosen
        for choice in signed_data["certificates"]
        if isinstance(choice.chosen, x509.Certificate) and choice.chosen.dump() != certificate.dump()
    ]
    path = validate_path(certificate, others, trust, at=[signing_time] if signing_time is not None else [])
    if not path.trusted:
        problems.append("manifest.sig：签名证书不是受信任的平台证书（或不由受信任的根证书签发）")
    problems.extend(f"manifest.sig：{problem}" for problem in path.problems)
    if signing_time is None:
        problems.append("manifest.sig：签名未注明签署时间")
    subject = str(certificate.subject.native.get("common_name", certificate.subject.human_friendly))
    return ManifestSignature(not problems, subject, signing_time, problems, signature_value, path.path_names)
