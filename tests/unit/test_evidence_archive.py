"""The evidence pack's container and manifest signature, without a database: canonical ZIP, hostile ZIPs, the
detached CMS over the manifest."""

from __future__ import annotations

import io
import warnings
import zipfile
from datetime import UTC, datetime

import pytest

from app.crypto.keys import make_self_signed_certificate
from app.crypto.openssl_provider import generate_sm2_private_key_pem
from app.evidence.archive import UnreadablePack, canonical_order, read_archive, write_archive
from app.evidence.manifest import manifest_bytes, sign_manifest, verify_manifest_signature
from app.evidence.verify import verify_pack
from app.pki.chain import TrustStore

WHEN = datetime(2026, 12, 4, 10, 30, 15, tzinfo=UTC)


def test_the_archive_is_canonical_and_reads_back() -> None:
    members = {"manifest.sig": b"s", "b/x.json": b"{}", "README.txt": b"r", "a.json": b"[]", "manifest.json": b"m"}
    assert canonical_order(list(members)) == ["README.txt", "a.json", "b/x.json", "manifest.json", "manifest.sig"]
    pack = write_archive(members, WHEN)
    assert pack == write_archive(dict(reversed(members.items())), WHEN), "order and dates do not depend on input"
    read = read_archive(pack)
    assert read.members == members and read.order == canonical_order(list(members)) and read.problems == []
    assert {info.compress_type for info in zipfile.ZipFile(io.BytesIO(pack)).infolist()} == {zipfile.ZIP_STORED}


def test_hostile_archives_are_findings_not_crashes() -> None:
    with pytest.raises(UnreadablePack, match="不是有效的 ZIP 证据包"):
        read_archive(b"PK\x03\x04 garbage")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name it writes
        archive.writestr("deal.json", b"{}")
        archive.writestr("deal.json", b"{}")
        archive.writestr("big.txt", b"0" * 10_000, compress_type=zipfile.ZIP_DEFLATED)
    read = read_archive(buffer.getvalue())
    assert "deal.json：证据包中出现重复的同名文件" in read.problems
    assert any(problem.startswith("big.txt：成员被压缩") for problem in read.problems) and "big.txt" not in read.members
    for garbage in (b"", b"hello", buffer.getvalue(), write_archive({"a.txt": b"a"}, WHEN)):
        report = verify_pack(garbage, [])
        assert not report.valid and report.problems, garbage[:8]
    assert "manifest.json：缺失，无法核验证据包" in verify_pack(write_archive({"a.txt": b"a"}, WHEN), []).problems


def test_manifest_signature_round_trip_and_refusals() -> None:
    key = generate_sm2_private_key_pem()
    certificate = make_self_signed_certificate(
        key, "存管平台电子签章", "Cunguan", valid_from=datetime(2026, 1, 1, tzinfo=UTC)
    )
    manifest = manifest_bytes({"a.txt": b"a"}, deal_id=1, deal_no="BJ1", built_at=WHEN, builder="user:ops")
    assert b'"sm3": "' in manifest and b'"built_at": "2026-12-04T10:30:15Z"' in manifest
    signature = sign_manifest(manifest, key, certificate, WHEN)
    checked = verify_manifest_signature(manifest, signature, TrustStore.of([certificate]))
    assert checked.valid and checked.signer == "存管平台电子签章" and checked.signing_time == WHEN
    other = make_self_signed_certificate(generate_sm2_private_key_pem(), "别人", "Other")
    assert any(
        "不是受信任" in problem
        for problem in verify_manifest_signature(manifest, signature, TrustStore.of([other])).problems
    )
    changed = verify_manifest_signature(manifest.replace(b"BJ1", b"BJ2"), signature, TrustStore.of([certificate]))
    assert "manifest.json：内容与签名摘要不一致（清单被改动）" in changed.problems
    garbled = verify_manifest_signature(manifest, b"\x30\x03\x02\x01\x01", TrustStore.of([certificate]))
    assert not garbled.valid and garbled.problems[0].startswith("manifest.sig：签名数据无法解析")
