"""The pack's files from a deal's records, pure (no database): JSON documents, the bank notifications (raw when they
carry no personal data, masked otherwise), the pinned versions, the certificates and the Chinese README.

PII: the pack goes to courts and regulators, so it holds personal data only masked, as pages show it (names 张*,
ID numbers 110***********002X, phones 138****1234, accounts **** 1234). What cannot be masked without destroying the
evidence is kept as it is and said so in the README: the signed agreement PDF (it prints what its template version
masks) and the audit entries (stored masked already; their hashes cover them as stored)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.domain.pii_mask import mask_card, mask_id_number, mask_name, mask_phone

# fields of a bank notification that are a person's data: such a body is put in the pack masked
PERSONAL_FIELDS = {"payer_name": mask_name, "payer_account": mask_card}
RAW, MASKED = "raw", "masked"
CRL_SUFFIX = ".crl.pem"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@-]")


def utc_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="microseconds")


def json_member(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


def safe_name(text: str) -> str:
    """A path segment from an identifier: letters, digits and `_.@-` kept, anything else `_`, never `..`."""
    cleaned = _UNSAFE.sub("_", text).strip(".") or "_"
    return cleaned.replace("..", "_")


def version_path(kind: str, name: str) -> str:
    """Where a pinned definition is put: versions/<kind>/<name>, each segment made safe (templates keep folders)."""
    suffix = {"workflow": ".json", "product": ".json", "clause": ".html.j2"}.get(kind, "")
    return "/".join(["versions", safe_name(kind), *(safe_name(part) for part in name.split("/"))]) + suffix


@dataclass(frozen=True)
class Parties:
    """The deal's parties as pages show them (masked)."""

    buyer_name: str | None
    buyer_id_number: str | None
    buyer_phone: str | None
    buyer_bank_account: str | None
    seller_name: str | None
    seller_id_number: str | None
    seller_phone: str | None
    seller_bank_account: str | None

    def masked(self) -> dict[str, dict[str, str | None]]:
        def side(name: str | None, id_number: str | None, phone: str | None, account: str | None) -> dict[str, Any]:
            return {
                "name": mask_name(name) if name else None,
                "id_number": mask_id_number(id_number) if id_number else None,
                "phone": mask_phone(phone) if phone else None,
                "bank_account": mask_card(account) if account else None,
            }

        return {
            "buyer": side(self.buyer_name, self.buyer_id_number, self.buyer_phone, self.buyer_bank_account),
            "seller": side(self.seller_name, self.seller_id_number, self.seller_phone, self.seller_bank_account),
        }


@dataclass(frozen=True)
class Notification:
    bank_code: str
    notification_id: str
    type: str
    raw_body: bytes
    received_at: datetime
    processed_at: datetime | None
    outcome: str | None
    signature: dict[str, str] | None


@dataclass
class DealEvidence:
    """Everything the pack is made of, read from the database (`collect.collect`)."""

    deal: dict[str, Any]
    parties: Parties
    agreement_pdf: bytes | None
    agreement: dict[str, Any] | None
    timeline: list[dict[str, Any]]
    audit: list[dict[str, Any]]
    transfers: list[dict[str, Any]]
    notifications: list[Notification]
    city_config: dict[str, Any] | None
    definitions: dict[str, tuple[str, str, str | None]]  # pin key -> (kind, name, content or None: not found)
    pins: dict[str, str]
    certificates: dict[str, bytes] = field(default_factory=dict)  # file name -> PEM


def _notification_files(index: int, item: Notification) -> dict[str, bytes]:
    stem = f"bank_notifications/{index:03d}-{safe_name(item.type)}-{safe_name(item.notification_id)}"
    try:
        body = json.loads(item.raw_body)
    except ValueError:
        body = {}
    personal = isinstance(body, dict) and any(name in body for name in PERSONAL_FIELDS)
    if personal:
        masked = {key: PERSONAL_FIELDS[key](value) if key in PERSONAL_FIELDS else value for key, value in body.items()}
        content = json_member(masked)
    else:
        content = item.raw_body
    meta = {
        "bank_code": item.bank_code,
        "notification_id": item.notification_id,
        "type": item.type,
        "received_at": utc_text(item.received_at),
        "processed_at": utc_text(item.processed_at),
        "outcome": item.outcome,
        "body_file": f"{stem}.json",
        "body": MASKED if personal else RAW,
        "signature_headers": item.signature,
        "bank_certificate": f"certificates/bank-{safe_name(item.bank_code)}.cert.pem",
        "signed_bytes": "X-Bank-Timestamp + \\n + X-Bank-Nonce + \\n + 原始报文",
    }
    return {f"{stem}.json": content, f"{stem}.meta.json": json_member(meta)}


def pack_members(evidence: DealEvidence) -> dict[str, bytes]:
    """path -> content of every member but the manifest's own files."""
    deal_no = evidence.deal["deal_no"]
    members: dict[str, bytes] = {}
    versions: dict[str, dict[str, Any]] = {}
    for key, (kind, name, content) in sorted(evidence.definitions.items()):
        path = version_path(kind, name) if content is not None else None
        versions[key] = {"sha256": evidence.pins.get(key), "path": path}
        if path is not None and content is not None:
            members[path] = content.encode("utf-8")
    if evidence.city_config is not None:
        members["versions/city_config.json"] = json_member(evidence.city_config)
    deal = {
        **evidence.deal,
        "parties": evidence.parties.masked(),
        "agreement": evidence.agreement,
        "city_config": {
            "sha256": evidence.deal["city_config_sha256"],
            "path": "versions/city_config.json" if evidence.city_config is not None else None,
        },
        "versions": versions,
    }
    members["deal.json"] = json_member(deal)
    members["timeline.json"] = json_member(evidence.timeline)
    members["audit.jsonl"] = b"".join(
        json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8") + b"\n"
        for entry in evidence.audit
    )
    members["ledger.json"] = json_member({"unit": "fen", "transfers": evidence.transfers})
    if evidence.agreement_pdf is not None:
        members[f"agreements/{safe_name(deal_no)}.pdf"] = evidence.agreement_pdf
    for index, item in enumerate(evidence.notifications, start=1):
        members.update(_notification_files(index, item))
    for name, content in sorted(evidence.certificates.items()):
        members[f"certificates/{name}"] = content
    members["README.txt"] = readme(deal_no).encode("utf-8")
    return members


def readme(deal_no: str) -> str:
    return f"""存管单 {deal_no} 证据包
====================

本证据包由存管平台生成，可在不连接平台数据库的情况下离线核验。

文件说明
--------
manifest.json            清单：每个文件的路径、大小与 SM3 摘要，存管单编号，生成时间（UTC）与生成人。
manifest.sig             平台签章证书对 manifest.json 的分离式 CMS 签名（SM2 签名、SM3 摘要）。
manifest.tsr             （如有）可信时间戳（RFC 3161）。
deal.json                存管单概要：编号、城市、产品、银行、工作流与版本、金额（单位：分）、当事人（脱敏）、
                         所固定的城市配置与工作流、协议模板、条款版本（内容哈希 SHA-256）。
agreements/*.pdf         已签署的资金存管协议（PDF 内含平台认证签章及银行会签，签署后的每次追加均可核验）。
timeline.json            时间线：每次状态变化的时间（UTC）、事件、前后状态、操作人、说明。
audit.jsonl              本存管单的审计日志条目（每行一条，按入链序号 seq），含链式哈希 prev_hash/hash 与 MAC。
ledger.json              本存管单的账务转账记录：借方、贷方账户、金额（分）、类型、时间（UTC）。
bank_notifications/      银行回调通知：*.json 为报文，*.meta.json 为接收时间、处理结果与银行签名请求头
                         （X-Bank-Timestamp、X-Bank-Nonce、X-Bank-Signature）。
versions/                存管单固定使用的城市配置、工作流定义、协议模板与条款的原文。
certificates/            平台签章证书、存管银行证书、平台根证书（ca-root.cert.pem）与证书吊销列表（ca.crl.pem），
                         核验协议签章、清单签名与银行签名所需；平台与银行的电子印章（*.seal.der，GB/T 38540，
                         即协议签章中携带的印章，可用 flask --app wsgi ca show-seal 查看）。

个人信息
--------
证据包只包含脱敏后的个人信息（姓名 张*、身份证号 110***********002X、手机号 138****1234、账号 **** 1234），
不含完整的身份证号、手机号或银行卡号。以下内容按原样保留：已签署的协议 PDF（其内容即签署时的文本，
脱敏方式由协议模板决定，改动即破坏签章）；审计日志条目（存储时即已脱敏，哈希覆盖其原文）。
含付款人信息的银行到账通知以脱敏内容收录（body 为 masked），其银行签名须以银行留存的原始报文核验；
不含个人信息的通知（开户、付款结果）原样收录（body 为 raw），可用包内银行证书直接验证签名。

如何核验
--------
1. 平台命令：flask --app wsgi evidence verify 证据包.zip [--trust 平台根证书.pem] [--trust-tsa 时间戳证书.pem] [--json]
   全部通过时退出码为 0；任何文件的任何字节被改动、增加或删除文件，都会给出指明文件的中文原因。
2. 平台页面：/evidence/verify 上传证据包。
3. 手工核验：
   a. 用可信渠道取得的平台根证书核验 manifest.sig 对 manifest.json 的签名（SM2/SM3，CMS 分离式签名，
      签名证书链至根证书且未被吊销）；如有 manifest.tsr，核验时间戳对 manifest.sig 的 SM3 摘要；
   b. 逐个计算文件的 SM3 摘要，与 manifest.json 所列一致，且包内没有清单以外的文件；
   c. 用 certificates/ 中的证书核验 agreements/*.pdf 的签章与 raw 银行通知的签名；
   d. audit.jsonl 每条的 hash = SM3(prev_hash + 条目规范 JSON)，seq 相邻的条目首尾相接。
"""
