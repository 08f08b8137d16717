"""Verify an evidence pack offline: no database, no key but the trusted certificates given. Every member present
with the size and SM3 the signed manifest lists and nothing else, the ZIP written the one canonical way, the
manifest's signature by a trusted certificate, every agreement signature, every raw bank notification's signature
with the pack's bank certificate, the audit entries' hashes and links, the pinned versions' hashes. Every failure
is a Chinese reason naming the member; nothing raises on bad input."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.banks.protocol import signing_payload
from app.crypto import sm2_verify, sm3
from app.crypto.keys import certificate_public_key_pem
from app.domain.audit import EntryContent, chain_hash
from app.domain.cities import canonical_json
from app.evidence.archive import (
    MANIFEST,
    MANIFEST_SIGNATURE,
    MANIFEST_TIMESTAMP,
    TRAILER,
    UnreadablePack,
    read_archive,
    write_archive,
)
from app.evidence.manifest import FORMAT, ManifestSignature, verify_manifest_signature
from app.evidence.members import CRL_SUFFIX, RAW
from app.pdf.verify import verify_pdf_signatures
from app.pki.certificates import is_self_issued, load_certificate
from app.pki.chain import TrustStore
from app.tsa.tokens import check_token_digest

AUDIT_MEMBER = "audit.jsonl"
DEAL_MEMBER = "deal.json"
CITY_CONFIG_MEMBER = "versions/city_config.json"


@dataclass
class PackReport:
    """The verdict on a pack: `valid` only when `problems` is empty; `notes` say what was not checkable."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    deal_no: str | None = None
    built_at: str | None = None
    builder: str | None = None
    members: int = 0
    signature: ManifestSignature | None = None
    agreements: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notifications_verified: int = 0
    audit_entries: int = 0
    timestamp: dict[str, Any] | None = None  # the manifest's trusted time (time, authority, serial), when it has one
    timestamp_expected: bool = False

    @property
    def valid(self) -> bool:
        return not self.problems and self.signature is not None and self.signature.valid

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "deal_no": self.deal_no,
            "built_at": self.built_at,
            "builder": self.builder,
            "members": self.members,
            "manifest_signature": self.signature.as_dict() if self.signature else None,
            "agreements": self.agreements,
            "bank_notifications_verified": self.notifications_verified,
            "audit_entries": self.audit_entries,
            "trusted_time": self.timestamp,
            "problems": self.problems,
            "notes": self.notes,
        }


def _json(members: dict[str, bytes], path: str) -> Any:
    return json.loads(members[path].decode("utf-8"))


def _manifest(members: dict[str, bytes], report: PackReport) -> dict[str, dict[str, Any]] | None:
    """path -> listed entry, or None when the manifest cannot be read."""
    try:
        document = _json(members, MANIFEST)
        if document.get("format") != FORMAT:
            report.problems.append(f"{MANIFEST}：格式不是 {FORMAT}")
            return None
        listed = {entry["path"]: entry for entry in document["members"]}
        report.deal_no = str(document["deal"]["deal_no"])
        report.built_at, report.builder = str(document["built_at"]), str(document["builder"])
        report.timestamp_expected = document.get("trusted_time") is not None
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as error:
        report.problems.append(f"{MANIFEST}：无法解析（{error}）")
        return None
    return listed


def _check_listing(
    listed: dict[str, dict[str, Any]], order: list[str], members: dict[str, bytes], report: PackReport
) -> None:
    for path, entry in listed.items():
        if path not in order:
            report.problems.append(f"{path}：清单所列文件缺失（文件被删除）")
        elif path in members and (
            len(members[path]) != entry.get("size") or sm3(members[path]).hex() != entry.get("sm3")
        ):
            report.problems.append(f"{path}：SM3 摘要或大小与清单不符（文件被改动）")
    for path in order:
        if path not in listed and path not in TRAILER:
            report.problems.append(f"{path}：清单未列出的多余文件（文件被添加）")


def _check_canonical(data: bytes, members: dict[str, bytes], report: PackReport) -> None:
    try:
        built_at = datetime.fromisoformat(str(report.built_at))
    except ValueError:
        report.problems.append(f"{MANIFEST}：生成时间无法解析")
        return
    if write_archive(members, built_at) != data:
        report.problems.append("证据包 ZIP 结构与标准写法不一致（文件头、顺序、时间等元数据被改动）")


def _self_issued(certificate_pem: bytes) -> bool:
    try:
        return is_self_issued(load_certificate(certificate_pem))
    except Exception:  # an unreadable certificate pins nothing
        return False


def _check_timestamp(members: dict[str, bytes], tsa: TrustStore | None, report: PackReport) -> None:
    """manifest.tsr: present exactly when the signed manifest says so; a TSA's token over SM3(manifest.sig)."""
    if MANIFEST_TIMESTAMP not in members:
        if report.timestamp_expected:
            report.problems.append(f"{MANIFEST_TIMESTAMP}：清单注明附有可信时间戳，但文件缺失（被删除）")
        else:
            report.notes.append(f"证据包未附可信时间戳（{MANIFEST_TIMESTAMP}）：生成时间以平台签名时间为准")
        return
    if not report.timestamp_expected:
        report.problems.append(f"{MANIFEST_TIMESTAMP}：清单未注明可信时间戳，此文件是后加的")
    check = check_token_digest(members[MANIFEST_TIMESTAMP], sm3(members[MANIFEST_SIGNATURE]), tsa)
    report.timestamp = check.as_dict()
    if not check.valid:
        report.problems.append(f"{MANIFEST_TIMESTAMP}：可信时间戳无效（{'；'.join(check.errors)}）")


def _check_agreements(members: dict[str, bytes], trust: TrustStore, tsa: TrustStore | None, report: PackReport) -> None:
    for path in sorted(members):
        if not (path.startswith("agreements/") and path.endswith(".pdf")):
            continue
        reports = verify_pdf_signatures(members[path], trust, tsa)
        report.agreements[path] = [item.as_dict() for item in reports]
        if not all(item.valid for item in reports):
            reasons = "；".join(dict.fromkeys(error for item in reports for error in item.errors)) or "签章无效"
            report.problems.append(f"{path}：协议签章无效（{reasons}）")


def _check_notification(members: dict[str, bytes], path: str, report: PackReport) -> None:
    meta = _json(members, path)
    body_path = str(meta["body_file"])
    if body_path not in members:
        report.problems.append(f"{body_path}：银行通知报文缺失")
        return
    headers = meta.get("signature_headers")
    if meta.get("body") != RAW:
        report.notes.append(f"{body_path}：含付款人个人信息，以脱敏内容收录，银行签名须以银行留存的原文核验")
        return
    if not headers:
        report.notes.append(f"{body_path}：接收时未留存银行签名（迁移 0047 之前接收或对账补单）")
        return
    certificate = members.get(str(meta["bank_certificate"]))
    if certificate is None:
        report.problems.append(f"{meta['bank_certificate']}：核验银行签名所需的银行证书缺失")
        return
    payload = signing_payload(str(headers["timestamp"]), str(headers["nonce"]), members[body_path])
    signature = base64.b64decode(str(headers["signature"]), validate=True)
    if sm2_verify(certificate_public_key_pem(certificate), payload, signature):
        report.notifications_verified += 1
    else:
        report.problems.append(f"{body_path}：银行签名验证失败（报文或签名被改动）")


def _check_audit(members: dict[str, bytes], report: PackReport) -> None:
    previous: tuple[int, str] | None = None
    for line in members[AUDIT_MEMBER].decode("utf-8").splitlines():
        entry = json.loads(line)
        content = EntryContent(
            int(entry["seq"]),
            datetime.fromisoformat(entry["at"]),
            entry["actor"],
            entry["action"],
            entry["subject"],
            entry["before"],
            entry["after"],
            entry["detail"],
            entry.get("writer"),
            entry.get("writer_seq"),
        )
        if chain_hash(str(entry["prev_hash"]), content) != entry["hash"]:
            report.problems.append(f"{AUDIT_MEMBER}：第 {content.id} 条内容与其链式哈希不符（条目被改动）")
        if previous is not None and previous[0] + 1 == content.id and previous[1] != entry["prev_hash"]:
            report.problems.append(f"{AUDIT_MEMBER}：第 {content.id} 条与前一条的哈希不相接")
        if previous is not None and content.id <= previous[0]:
            report.problems.append(f"{AUDIT_MEMBER}：第 {content.id} 条序号未递增")
        previous = (content.id, str(entry["hash"]))
        report.audit_entries += 1


def _check_versions(members: dict[str, bytes], report: PackReport) -> None:
    deal = _json(members, DEAL_MEMBER)
    if report.deal_no is not None and deal.get("deal_no") != report.deal_no:
        report.problems.append(f"{DEAL_MEMBER}：存管单编号与清单不符")
    for key, pinned in sorted((deal.get("versions") or {}).items()):
        path = pinned.get("path")
        if path is None:
            report.notes.append(f"{key}：固定的版本在生成时未找到原文")
        elif path not in members:
            report.problems.append(f"{path}：固定版本的原文缺失")
        elif hashlib.sha256(members[path]).hexdigest() != pinned.get("sha256"):
            report.problems.append(f"{path}：内容与存管单固定的版本哈希（{key}）不符")
    city = deal.get("city_config") or {}
    if city.get("path") is None:
        report.notes.append("城市配置：生成时未找到存管单固定的配置快照")
    elif city["path"] not in members:
        report.problems.append(f"{city['path']}：存管单固定的城市配置缺失")
    else:
        data = _json(members, city["path"]).get("data")
        if hashlib.sha256(canonical_json(data)).hexdigest() != city.get("sha256"):
            report.problems.append(f"{city['path']}：内容与存管单固定的城市配置哈希不符")


def _guarded(report: PackReport, path: str, check: Callable[[], None]) -> None:
    """Run one content check; malformed content is a problem naming the member, never an exception."""
    try:
        check()
    except Exception as error:
        report.problems.append(f"{path}：内容无法解析（{type(error).__name__}: {error}），文件已损坏或被改动")


def verify_pack(
    data: bytes,
    trusted_roots: Sequence[bytes],
    trusted_tsa: Sequence[bytes] | None = None,
    crls: Sequence[bytes] = (),
) -> PackReport:
    """The report on the pack `data`; `trusted_roots`: the trust anchors (PEM) the manifest's signer must chain to
    (the platform CA's root, or a certificate pinned); `trusted_tsa`: the TSA certificates (PEM, or the CA that issued
    them) the timestamps must chain to, None accepting the one inside each token; `crls`: CRLs besides the one in the
    pack (the CA's current one: a seal revoked after the pack was built fails too)."""
    report = PackReport()
    try:
        read = read_archive(data)
    except UnreadablePack as error:
        report.problems.append(str(error))
        return report
    members, report.members = read.members, len(read.order)
    report.problems.extend(read.problems)
    for required in (MANIFEST, MANIFEST_SIGNATURE):
        if required not in members:
            report.problems.append(f"{required}：缺失，无法核验证据包")
    if MANIFEST not in members or MANIFEST_SIGNATURE not in members:
        return report
    crls = [*crls, *(content for path, content in sorted(members.items()) if path.endswith(CRL_SUFFIX))]
    trust = TrustStore.of(trusted_roots, crls)
    report.signature = verify_manifest_signature(members[MANIFEST], members[MANIFEST_SIGNATURE], trust)
    report.problems.extend(report.signature.problems)
    listed = _manifest(members, report)
    if listed is None:
        return report
    _check_listing(listed, read.order, members, report)
    if not read.problems:
        _check_canonical(data, members, report)
    # the TSA's certificate: pinned, or issued by our CA (then the CA's root and CRLs apply); None: the token's own
    tsa = None if trusted_tsa is None else TrustStore.of([*trusted_tsa, *trusted_roots], crls)
    _guarded(report, MANIFEST_TIMESTAMP, lambda: _check_timestamp(members, tsa, report))
    # the agreements' signers: through the trusted roots (CRL applies), or a self-signed certificate the pack holds
    # (a bank's from before the CA), vouched for by the manifest's signature
    pinned = [
        content for path, content in sorted(members.items()) if path.endswith(".cert.pem") and _self_issued(content)
    ]
    agreements_trust = TrustStore.of([*trusted_roots, *pinned], crls)
    _guarded(report, "agreements/", lambda: _check_agreements(members, agreements_trust, tsa, report))
    for path in sorted(members):
        if path.startswith("bank_notifications/") and path.endswith(".meta.json"):
            _guarded(report, path, lambda path=path: _check_notification(members, path, report))  # type: ignore[misc]
    for path, check in (
        (AUDIT_MEMBER, lambda: _check_audit(members, report)),
        (DEAL_MEMBER, lambda: _check_versions(members, report)),
    ):
        if path in members:
            _guarded(report, path, check)
        else:
            report.problems.append(f"{path}：缺失")
    return report
