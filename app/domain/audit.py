"""The audit chain, pure: each entry's hash is SM3(previous entry's hash + the entry's canonical content), each
entry's MAC is HMAC-SM3 of its hash under a key the database does not hold, and signed checkpoints of the chain
head (kept outside the database) show how far the chain reached."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.crypto import get_provider, sm3

GENESIS = "0" * 64


@dataclass(frozen=True)
class EntryContent:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    before: Any
    after: Any
    detail: dict[str, Any]

    def canonical(self) -> bytes:
        body = {
            "id": self.id,
            "at": self.at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "before": self.before,
            "after": self.after,
            "detail": self.detail,
        }
        return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def chain_hash(prev_hash: str, content: EntryContent) -> str:
    return sm3(prev_hash.encode("ascii") + content.canonical()).hex()


def entry_mac(key: bytes, entry_hash: str) -> str:
    """HMAC-SM3 (RFC 2104) of an entry's chain hash, which covers its content and its place in the chain."""
    return get_provider().hmac_sm3(key, b"cunguan/audit/v1:" + entry_hash.encode("ascii")).hex()


@dataclass(frozen=True)
class ChainBreak:
    entry_id: int
    reason: str  # zh-CN

    def __str__(self) -> str:
        return f"第 {self.entry_id} 条：{self.reason}"


@dataclass(frozen=True)
class StoredEntry:
    content: EntryContent
    prev_hash: str
    hash: str
    mac: str | None = None


@dataclass(frozen=True)
class ChainHead:
    """What a chain walk saw: entries checked, the last id and its hash, and each id's hash."""

    count: int
    last_id: int
    last_hash: str
    hashes: dict[int, str]


def verify_chain(
    entries: Iterable[StoredEntry], mac_key: bytes | None = None, remember: Callable[[int], bool] | None = None
) -> tuple[ChainHead, list[ChainBreak]]:
    """Check entries in id order: ids 1, 2, 3… without gaps, each linked to the previous hash, each hash
    recomputed from its content and, with `mac_key`, each MAC recomputed from the hash (whoever rewrites an
    entry and recomputes the chain cannot recompute the MACs). `remember(id)` says which ids' hashes the head
    keeps (for the checkpoints). Returns (head, breaks)."""
    breaks: list[ChainBreak] = []
    expected_prev, expected_id, count, hashes = GENESIS, 1, 0, {}
    for entry in entries:
        count += 1
        if entry.content.id != expected_id:
            breaks.append(ChainBreak(entry.content.id, f"序号不连续，应为 {expected_id}"))
        if entry.prev_hash != expected_prev:
            breaks.append(ChainBreak(entry.content.id, "前一条哈希不符（记录被删除、插入或改动）"))
        if chain_hash(entry.prev_hash, entry.content) != entry.hash:
            breaks.append(ChainBreak(entry.content.id, "内容哈希不符（记录被改动）"))
        if mac_key is not None and not hmac.compare_digest(entry.mac or "", entry_mac(mac_key, entry.hash)):
            breaks.append(ChainBreak(entry.content.id, "MAC 不符（记录被改写或伪造）" if entry.mac else "缺少 MAC"))
        if remember is not None and remember(entry.content.id):
            hashes[entry.content.id] = entry.hash
        expected_prev, expected_id = entry.hash, entry.content.id + 1
    return ChainHead(count, expected_id - 1, expected_prev, hashes), breaks


@dataclass(frozen=True)
class Checkpoint:
    """The chain head at one moment (sequence number and hash), signed with the platform's SM2 key."""

    seq: int
    hash: str
    at: datetime

    def message(self) -> bytes:
        body = {"seq": self.seq, "hash": self.hash, "at": self.at.astimezone(UTC).isoformat(timespec="seconds")}
        return b"cunguan/audit-checkpoint/v1:" + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def check_against_checkpoints(head: ChainHead, checkpoints: Iterable[Checkpoint]) -> list[ChainBreak]:
    """Every checkpoint's entry must still be there with the same hash: entries deleted from the end (the
    chain stops before a checkpoint) or a chain rebuilt after it are both breaks."""
    breaks: list[ChainBreak] = []
    for point in checkpoints:
        if point.seq > head.last_id:
            reason = f"日志只到第 {head.last_id} 条，短于 {point.at:%Y-%m-%d %H:%M} UTC 的签名检查点（记录被删除）"
            breaks.append(ChainBreak(point.seq, reason))
        elif head.hashes.get(point.seq) != point.hash:
            breaks.append(ChainBreak(point.seq, "与签名检查点的哈希不符（链被重算）"))
    return breaks
