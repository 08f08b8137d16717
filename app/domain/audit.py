"""The audit chain, pure: each entry's hash is SM3(previous entry's hash + the entry's canonical content)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.crypto import sm3

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


def verify_chain(entries: Iterable[StoredEntry]) -> tuple[int, list[ChainBreak]]:
    """Check entries in id order: ids 1, 2, 3… without gaps, each linked to the previous hash, each hash
    recomputed from its content. Returns (entries checked, breaks)."""
    breaks: list[ChainBreak] = []
    expected_prev, expected_id, count = GENESIS, 1, 0
    for entry in entries:
        count += 1
        if entry.content.id != expected_id:
            breaks.append(ChainBreak(entry.content.id, f"序号不连续，应为 {expected_id}"))
        if entry.prev_hash != expected_prev:
            breaks.append(ChainBreak(entry.content.id, "前一条哈希不符（记录被删除、插入或改动）"))
        if chain_hash(entry.prev_hash, entry.content) != entry.hash:
            breaks.append(ChainBreak(entry.content.id, "内容哈希不符（记录被改动）"))
        expected_prev, expected_id = entry.hash, entry.content.id + 1
    return count, breaks
