"""The audit chain, pure: each entry's hash is SM3(previous entry's hash + the entry's canonical content), each
entry's MAC is HMAC-SM3 of its hash under a key the database does not hold, and signed checkpoints of the chain
head (kept outside the database) show how far the chain reached.

Entries are written unchained (the *tail*): each carries its writer (one per thread, renewed after a failed
commit) and the writer's own counter 1, 2, 3…, and a tail MAC of its content with both; a worker chains them
later. Per writer the counters must run without gaps across chain and tail, so an entry deleted before it was
chained shows as soon as its writer's next entry exists."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
    writer: str | None = None  # None: an entry chained when it was written (before migration 0049)
    writer_seq: int | None = None

    def _body(self) -> dict[str, Any]:
        body = {
            "at": self.at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "before": self.before,
            "after": self.after,
            "detail": self.detail,
        }
        if self.writer is not None:
            body |= {"writer": self.writer, "writer_seq": self.writer_seq}
        return body

    def canonical(self) -> bytes:
        """What the chain hash covers: the place in the chain (`id`) and everything the entry says."""
        body = {"id": self.id, **self._body()}
        return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()

    def canonical_tail(self) -> bytes:
        """What the tail MAC covers: everything the entry says, its writer and counter (no place in the chain yet)."""
        return json.dumps(self._body(), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def chain_hash(prev_hash: str, content: EntryContent) -> str:
    return sm3(prev_hash.encode("ascii") + content.canonical()).hex()


def entry_mac(key: bytes, entry_hash: str) -> str:
    """HMAC-SM3 (RFC 2104) of an entry's chain hash, which covers its content and its place in the chain."""
    return get_provider().hmac_sm3(key, b"cunguan/audit/v1:" + entry_hash.encode("ascii")).hex()


def tail_mac(key: bytes, content: EntryContent) -> str:
    """HMAC-SM3 of an unchained entry's content with its writer and counter: written in the entry's own
    transaction, so that nobody without the key can forge, alter or re-attribute an entry before it is chained."""
    return get_provider().hmac_sm3(key, b"cunguan/audit-tail/v1:" + content.canonical_tail()).hex()


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
class TailEntry:
    """An entry not chained yet: its row id (for the report), content (id 0) and tail MAC."""

    row_id: int
    content: EntryContent
    mac: str | None


@dataclass(frozen=True)
class ChainHead:
    """What a chain walk saw: entries checked, the last id and its hash, each remembered id's hash, and each
    writer's last counter."""

    count: int
    last_id: int
    last_hash: str
    hashes: dict[int, str]
    writers: dict[str, int] = field(default_factory=dict)


def _next_of_writer(writers: dict[str, int], content: EntryContent) -> str | None:
    """Advance the entry's writer; a reason when its counter is not the next one (an entry missing before it, or
    a copy of an earlier one)."""
    if content.writer is None:
        return None
    expected = writers.get(content.writer, 0) + 1
    writers[content.writer] = max(writers.get(content.writer, 0), content.writer_seq or 0)
    if content.writer_seq == expected:
        return None
    if (content.writer_seq or 0) < expected:
        return f"写入者 {content.writer} 的计数 {content.writer_seq} 重复（记录被复制）"
    return f"写入者 {content.writer} 的第 {expected} 条缺失（记录在入链前被删除）"


def verify_chain(
    entries: Iterable[StoredEntry], mac_key: bytes | None = None, remember: Callable[[int], bool] | None = None
) -> tuple[ChainHead, list[ChainBreak]]:
    """Check entries in id order: ids 1, 2, 3… without gaps, each linked to the previous hash, each hash
    recomputed from its content and, with `mac_key`, each MAC recomputed from the hash (whoever rewrites an
    entry and recomputes the chain cannot recompute the MACs). `remember(id)` says which ids' hashes the head
    keeps (for the checkpoints). Returns (head, breaks)."""
    breaks: list[ChainBreak] = []
    expected_prev, expected_id, count, hashes = GENESIS, 1, 0, {}
    writers: dict[str, int] = {}
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
        if (missing := _next_of_writer(writers, entry.content)) is not None:
            breaks.append(ChainBreak(entry.content.id, missing))
        if remember is not None and remember(entry.content.id):
            hashes[entry.content.id] = entry.hash
        expected_prev, expected_id = entry.hash, entry.content.id + 1
    return ChainHead(count, expected_id - 1, expected_prev, hashes, writers), breaks


def verify_tail(entries: Iterable[TailEntry], mac_key: bytes, writers: dict[str, int]) -> list[ChainBreak]:
    """Check the unchained entries (any order): each tail MAC, and each writer's counters continuing its chained
    entries (`writers`, from `verify_chain`) without gaps or repeats. The newest entries of a writer that wrote
    nothing since can still be deleted unseen until they are chained: the documented residual risk."""
    breaks: list[ChainBreak] = []
    seen = dict(writers)
    for entry in sorted(entries, key=lambda e: (e.content.writer or "", e.content.writer_seq or 0, e.row_id)):
        where = f"未入链记录（记录号 {entry.row_id}）"
        if entry.content.writer is None or entry.content.writer_seq is None:
            breaks.append(ChainBreak(entry.row_id, f"{where}缺少写入者"))
            continue
        if not hmac.compare_digest(entry.mac or "", tail_mac(mac_key, entry.content)):
            breaks.append(ChainBreak(entry.row_id, f"{where} MAC 不符（记录被改写或伪造）"))
        if (missing := _next_of_writer(seen, entry.content)) is not None:
            breaks.append(ChainBreak(entry.row_id, f"{where}{missing}"))
    return breaks


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
