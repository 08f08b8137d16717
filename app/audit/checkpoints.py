"""Signed checkpoints of the audit chain's head, kept outside the database (JSON lines in the instance folder):
sequence number and hash, signed with the platform's SM2 key. Whoever deletes the newest entries, or rebuilds
the chain, cannot make it reach the last checkpoint again. Workers add one every few minutes when the chain has
grown (`maintain`), `flask audit checkpoint` at once."""

from __future__ import annotations

import base64
import fcntl
import hmac
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from app.audit.chain import chain
from app.audit.mac_key import mac_key
from app.crypto import sm2_sign, sm2_verify
from app.db.audit_models import AuditEntry
from app.domain.audit import ChainBreak, Checkpoint, entry_mac
from app.platform.errors import ConfigError
from app.platform.runtime import Runtime

CHECKPOINT_EVERY_S = 300.0


def checkpoint_path(rt: Runtime) -> Path:
    if rt.audit_checkpoints is None:
        raise ConfigError("未配置审计检查点文件", code="AUDIT_CHECKPOINTS_UNSET")
    return rt.audit_checkpoints


def read_checkpoints(rt: Runtime) -> tuple[list[Checkpoint], list[ChainBreak]]:
    """The file's checkpoints whose signature verifies, and a break for every line that does not (a file
    not there yet holds none)."""
    path = rt.audit_checkpoints
    if path is None or not path.is_file():
        return [], []
    public_key = rt.keys.platform_public_key_pem
    found: list[Checkpoint] = []
    breaks: list[ChainBreak] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            point = Checkpoint(int(record["seq"]), str(record["hash"]), datetime.fromisoformat(record["at"]))
            signature = base64.b64decode(record["signature"], validate=True)
        except (ValueError, KeyError, TypeError):
            breaks.append(ChainBreak(0, f"检查点文件第 {number} 行无法解析"))
            continue
        if not sm2_verify(public_key, point.message(), signature):
            breaks.append(ChainBreak(point.seq, f"检查点文件第 {number} 行签名无效"))
            continue
        found.append(point)
    return found, breaks


def _last_line(path: Path) -> str:
    with path.open("rb") as file:
        file.seek(0, os.SEEK_END)
        file.seek(max(0, file.tell() - 4096))
        lines = file.read().decode("utf-8", errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def _recent(path: Path) -> bool:
    """The file holds a checkpoint written (or confirmed as current) less than CHECKPOINT_EVERY_S ago."""
    if not path.is_file():
        return False
    status = path.stat()
    return status.st_size > 0 and time.time() - status.st_mtime < CHECKPOINT_EVERY_S


def write_checkpoint(rt: Runtime, *, force: bool = False) -> Checkpoint | None:
    """Chain the committed entries, sign the chain head and add it to the file, unless the head is the last
    checkpoint's or (without `force`) the last one is younger than CHECKPOINT_EVERY_S. The head's MAC is checked
    first: a forged head is never signed. Returns the new checkpoint, or None."""
    path = checkpoint_path(rt)
    if not force and _recent(path):
        return None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # workers in several processes: one checks and writes at a time
        if not force and _recent(path):
            return None
        chain(rt)  # what is committed so far gets into the chain, and so under this checkpoint
        with rt.db.uow() as uow:
            head = uow.session.execute(
                select(AuditEntry.seq.label("id"), AuditEntry.hash, AuditEntry.mac)
                .where(AuditEntry.seq.is_not(None))
                .order_by(AuditEntry.seq.desc())
                .limit(1)
            ).first()
        if head is None:
            return None
        if not hmac.compare_digest(head.mac or "", entry_mac(mac_key.key(), head.hash)):
            raise ConfigError(
                "审计日志最新一条的 MAC 不符，拒绝签署检查点（请运行 flask audit verify）",
                code="AUDIT_HEAD_FORGED",
                details={"seq": head.id},
            )
        last = _last_line(path)
        if last and json.loads(last).get("seq") == head.id:
            os.utime(path)  # nothing new: the next try is a period away
            return None
        point = Checkpoint(head.id, head.hash, datetime.now(UTC).replace(microsecond=0))
        signature = sm2_sign(rt.keys.platform_private_key_pem, point.message())
        record = {
            "seq": point.seq,
            "hash": point.hash,
            "at": point.at.isoformat(),
            "signature": base64.b64encode(signature).decode(),
        }
        file.write(json.dumps(record, sort_keys=True) + "\n")
        file.flush()
        os.fsync(file.fileno())
    return point


def maintain(rt: Runtime) -> None:
    """The worker's round: a checkpoint when one is due (runtimes without a checkpoint file skip it)."""
    if rt.audit_checkpoints is not None:
        write_checkpoint(rt)
