"""The pack's container, pure: a ZIP written in one canonical way (members stored uncompressed, in a fixed order,
all with the build time), so that the verifier can write it again from what it read and find any changed byte,
even in the ZIP's own headers; and reading one back without trusting it (sizes, duplicates, compression)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

MANIFEST = "manifest.json"
MANIFEST_SIGNATURE = "manifest.sig"
MANIFEST_TIMESTAMP = "manifest.tsr"  # an RFC 3161 token over the manifest signature, once app/tsa provides one
README = "README.txt"
TRAILER = (MANIFEST, MANIFEST_SIGNATURE, MANIFEST_TIMESTAMP)  # last, in this order; the rest sorted by path
MAX_MEMBERS = 5000
MAX_PACK_BYTES = 64 * 1024 * 1024


class UnreadablePack(ValueError):
    """The bytes are no pack this verifier can read; the message is Chinese and names the member when it can."""


def canonical_order(paths: Sequence[str]) -> list[str]:
    """README first, the evidence by path, the manifest, its signature and timestamp last."""
    body = sorted(path for path in paths if path not in TRAILER and path != README)
    head = [README] if README in paths else []
    return head + body + [path for path in TRAILER if path in paths]


def _zip_time(moment: datetime) -> tuple[int, int, int, int, int, int]:
    utc = moment.astimezone(UTC)
    return (max(utc.year, 1980), utc.month, utc.day, utc.hour, utc.minute, utc.second - utc.second % 2)


def write_archive(members: dict[str, bytes], built_at: datetime) -> bytes:
    """The ZIP of `members` in canonical order, each stored (no compression), dated `built_at` (UTC)."""
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in canonical_order(list(members)):
            info = zipfile.ZipInfo(path, date_time=_zip_time(built_at))
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # Unix, whatever the writing machine
            info.external_attr = 0o100644 << 16
            info.flag_bits |= 0x800  # names are UTF-8
            archive.writestr(info, members[path])
    return output.getvalue()


@dataclass(frozen=True)
class ReadPack:
    """Members as read (path -> bytes, in the archive's order) and the problems met reading them."""

    members: dict[str, bytes]
    order: list[str]
    problems: list[str]


def read_archive(data: bytes) -> ReadPack:
    """Every member of the ZIP `data`. UnreadablePack when it is no ZIP at all, too large or too many members;
    a member that cannot be read (bad CRC, compressed, a duplicate name) is a problem naming it."""
    if len(data) > MAX_PACK_BYTES:
        raise UnreadablePack(f"证据包过大（超过 {MAX_PACK_BYTES // (1024 * 1024)} MB）")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as error:
        raise UnreadablePack(f"不是有效的 ZIP 证据包：{error}") from error
    if len(infos) > MAX_MEMBERS:
        raise UnreadablePack(f"证据包成员过多（{len(infos)} 个）")
    members: dict[str, bytes] = {}
    order: list[str] = []
    problems: list[str] = []
    for info in infos:
        name = info.filename
        if name in members or name in order:
            problems.append(f"{name}：证据包中出现重复的同名文件")
            continue
        order.append(name)
        if info.compress_type != zipfile.ZIP_STORED or info.file_size > len(data):
            problems.append(f"{name}：成员被压缩或声明的大小异常（证据包只以存储方式写入）")
            continue
        try:
            members[name] = archive.read(info)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as error:
            problems.append(f"{name}：无法读取（{error}），文件已损坏或被改动")
    return ReadPack(members, order, problems)
