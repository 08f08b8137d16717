"""The evidence pack (issue 20): built from a signed, funded deal, verified offline (another process, no database),
and failing - naming the member - on any changed byte, added or removed member, or an untrusted signer."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text, update

from app.audit.chain import CHAIN_LOCK_KEY
from app.crypto import sm3
from app.crypto.keys import make_self_signed_certificate
from app.crypto.openssl_provider import generate_sm2_private_key_pem
from app.db.audit_models import AuditEntry
from app.db.models import BankNotification
from app.deals import service as deals
from app.evidence.archive import read_archive, write_archive
from app.evidence.build import EVIDENCE_ACTION, build_pack
from app.evidence.collect import collect
from app.evidence.verify import verify_pack
from app.pki.certificates import load_certificate
from app.pki.crl import Revocation, build_crl
from app.pki.store import load_ca, root_pem
from app.platform.errors import Busy
from app.platform.runtime import Runtime
from app.tsa import protocol as tsa_protocol
from app.tsa.authority import open_authority
from tests.conftest import csrf_token
from tests.factories import (
    CUSTODY_FEN,
    actor,
    arrive,
    bank_accepted,
    confirmed_deal,
    load_deal,
    notification,
    open_account,
    post_callback,
)

ACCOUNT = "6226000000000777"
PAYER_ACCOUNT = "6226620012345678"  # what `arrive` says paid in: never in the pack in full
ROOT = Path(__file__).resolve().parents[2]


def _closed_deal(rt: Runtime, client: FlaskClient, keys_dir: Path) -> int:
    """Signed, opened, funded in two arrivals, title transferred, the seller paid (the bank's result)."""
    deal_id = confirmed_deal(rt)
    open_account(client, keys_dir, rt, deal_id, ACCOUNT)
    arrive(client, keys_dir, ACCOUNT, 1_000, "EVIDENCE-REF-1")
    arrive(client, keys_dir, ACCOUNT, CUSTODY_FEN - 1_000, "EVIDENCE-REF-2")
    deals.record_title_transferred(rt, actor(rt, "ops"), deal_id)
    payout_id = load_deal(rt, deal_id).payouts[0].payout_id
    bank_accepted(rt, payout_id)
    paid = notification(
        "payout_result", payout_id=payout_id, bank_reference="EVIDENCE-PAY", status="succeeded", failure_reason=None
    )
    assert post_callback(client, keys_dir, paid)[0] == 200
    assert load_deal(rt, deal_id).state == "closed"
    return deal_id


def _members(pack: bytes) -> dict[str, bytes]:
    read = read_archive(pack)
    assert not read.problems
    return read.members


def _built_at(members: dict[str, bytes]) -> datetime:
    return datetime.fromisoformat(json.loads(members["manifest.json"])["built_at"])


def _flip(content: bytes, at: int | None = None) -> bytes:
    index = len(content) // 2 if at is None else at
    return content[:index] + bytes([content[index] ^ 0x01]) + content[index + 1 :]


@pytest.mark.usefixtures("users")
def test_pack_of_a_closed_deal_verifies_offline_and_fails_on_any_change(
    rt: Runtime, client: FlaskClient, keys_dir: Path, tmp_path: Path
) -> None:
    deal_id = _closed_deal(rt, client, keys_dir)
    deal = load_deal(rt, deal_id)
    with rt.db.uow() as uow:
        stored = list(uow.session.scalars(select(BankNotification).order_by(BankNotification.id)))
        assert [row.type for row in stored] == ["account_opened", "funds_arrived", "funds_arrived", "payout_result"]
        assert all(set(row.signature or {}) == {"timestamp", "nonce", "signature"} for row in stored), "kept (0047)"
    pack = build_pack(rt, deal_id, builder="user:ops")
    platform = root_pem(keys_dir)  # the trust anchor: the platform CA's root
    seal = load_certificate(rt.keys.platform_certificate_pem)
    with rt.db.uow() as uow:  # a result stored before 0047 kept its payout id: found by reading the bodies
        uow.session.execute(update(BankNotification).values(payout_id=None))
        uow.commit()
    assert [item.type for item in collect(rt, deal_id).notifications][-1] == "payout_result"
    rt.db.dispose()

    members = _members(pack)
    paths = set(members)
    assert {"README.txt", "deal.json", "timeline.json", "audit.jsonl", "ledger.json", "manifest.json"} <= paths
    assert {f"agreements/{deal.deal_no}.pdf", "manifest.sig", "certificates/platform.cert.pem"} <= paths
    assert "certificates/bank-ceb.cert.pem" in paths and "versions/city_config.json" in paths
    assert any(path.startswith("versions/workflow/") for path in paths)
    assert any(path.startswith("versions/template/") for path in paths)
    notifications = sorted(path for path in paths if path.startswith("bank_notifications/"))
    assert len(notifications) == 8, notifications
    assert "payout_result" in notifications[-1], "found by the payout id kept beside the body (0047)"
    ledger = json.loads(members["ledger.json"])
    custody = f"custody:{deal.deal_no}"
    arrivals = [t["amount_fen"] for t in ledger["transfers"] if t["credit_account"] == custody]
    assert arrivals == [1_000, CUSTODY_FEN - 1_000], "integer fen, in order"
    assert {t["kind"] for t in ledger["transfers"] if t["debit_account"] == custody} >= {"pending", "post_pending"}
    timeline = json.loads(members["timeline.json"])
    assert timeline[0]["event"] == "create" and timeline[-1]["at"].endswith("+00:00")
    deal_json = json.loads(members["deal.json"])
    assert deal_json["parties"]["buyer"]["id_number"] == "110***********002X"
    for path, content in members.items():  # no raw ID numbers or account numbers outside the signed PDF
        if not path.endswith(".pdf"):
            assert b"11010519491231002X" not in content and PAYER_ACCOUNT.encode() not in content, path
    arrival = next(path for path in notifications if "funds_arrived" in path and not path.endswith(".meta.json"))
    assert json.loads(members[arrival])["payer_account"] == "**** 5678"

    report = verify_pack(pack, [platform])
    assert report.valid, report.problems
    assert report.deal_no == deal.deal_no and report.builder == "user:ops"
    assert report.notifications_verified == 2, "the account opening and the payout result: raw, signed by the bank"
    assert sum("脱敏" in note for note in report.notes) == 2, "the arrivals: masked, said so"
    assert any(
        entry.startswith("payout:")
        for entry in {json.loads(line)["subject"] for line in members["audit.jsonl"].splitlines()}
    )
    assert report.audit_entries >= 3 and report.agreements[f"agreements/{deal.deal_no}.pdf"][0]["valid"]

    # offline: another process, no database configured, only the pack and the platform's certificate
    (tmp_path / "pack.zip").write_bytes(pack)
    (tmp_path / "root.pem").write_bytes(platform)
    script = (
        "import json, sys; from pathlib import Path; from app.evidence.verify import verify_pack; "
        "r = verify_pack(Path(sys.argv[1]).read_bytes(), [Path(sys.argv[2]).read_bytes()]); "
        "print(json.dumps(r.as_dict(), ensure_ascii=False)); sys.exit(0 if r.valid else 1)"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "pack.zip"), str(tmp_path / "root.pem")],
        capture_output=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert json.loads(run.stdout)["valid"] is True

    # one byte flipped in each kind of member (the ZIP rewritten, so only the content differs): each one named.
    # The evidence members all at once (each is checked against its own manifest line), the manifest's files alone.
    built_at = _built_at(members)
    kinds = [
        "README.txt",
        "deal.json",
        "timeline.json",
        "audit.jsonl",
        "ledger.json",
        f"agreements/{deal.deal_no}.pdf",
        arrival,
        arrival.replace(".json", ".meta.json"),
        "versions/city_config.json",
        next(path for path in paths if path.startswith("versions/template/")),
        next(path for path in paths if path.startswith("versions/workflow/")),
        "certificates/platform.cert.pem",
        "certificates/bank-ceb.cert.pem",
        "certificates/ca-root.cert.pem",
        "certificates/platform.seal.der",
        "certificates/bank-ceb.seal.der",
    ]
    result = verify_pack(
        write_archive({**members, **{path: _flip(members[path]) for path in kinds}}, built_at), [platform]
    )
    assert not result.valid
    for path in kinds:
        assert f"{path}：SM3 摘要或大小与清单不符（文件被改动）" in result.problems, (path, result.problems)
    for path in ("manifest.json", "manifest.sig"):
        result = verify_pack(write_archive({**members, path: _flip(members[path])}, built_at), [platform])
        assert not result.valid and any(problem.startswith(path) for problem in result.problems), (
            path,
            result.problems,
        )

    # a member added, a member removed
    added = verify_pack(write_archive({**members, "extra.txt": b"x"}, built_at), [platform])
    assert not added.valid and "extra.txt：清单未列出的多余文件（文件被添加）" in added.problems
    removed = verify_pack(write_archive({k: v for k, v in members.items() if k != "ledger.json"}, built_at), [platform])
    assert not removed.valid and "ledger.json：清单所列文件缺失（文件被删除）" in removed.problems

    # bytes of the ZIP itself: inside a member's data (CRC), in a header's date (canonical form), the last byte
    pdf_at = pack.index(members[f"agreements/{deal.deal_no}.pdf"][:64]) + 1000
    for at, named in ((pdf_at, f"agreements/{deal.deal_no}.pdf"), (10, "ZIP"), (len(pack) - 1, None)):
        result = verify_pack(_flip(pack, at), [platform])
        assert not result.valid, at
        if named is not None:
            assert any(named in problem for problem in result.problems), (at, result.problems)

    # the platform's seal revoked since (the CA's current CRL given by the verifier): the pack no longer verifies
    assert "certificates/ca-root.cert.pem" in paths and "certificates/ca.crl.pem" in paths, "validation data"
    assert report.signature is not None and report.signature.chain == ["存管平台电子签章", "存管平台根证书"]
    revoked = Revocation(seal.serial_number, datetime.now(UTC), "key_compromise")
    now = datetime.now(UTC)
    crl = build_crl(load_ca(keys_dir), [revoked], this_update=now, next_update=now + timedelta(days=1), number=99)
    after = verify_pack(pack, [platform], crls=[crl])
    assert not after.valid and any(p.startswith("manifest.sig：") and "吊销" in p for p in after.problems), (
        after.problems
    )

    # signed by a key the verifier does not trust
    stranger_key = generate_sm2_private_key_pem()
    stranger = make_self_signed_certificate(stranger_key, "别的平台", "Other")
    untrusted = verify_pack(pack, [stranger])
    assert not untrusted.valid and any(
        problem.startswith("manifest.sig：签名证书不是受信任") for problem in untrusted.problems
    )


@pytest.mark.usefixtures("users")
def test_building_a_pack_is_audited_and_its_entry_is_in_the_next_pack(rt: Runtime) -> None:
    deal_id = confirmed_deal(rt)
    first = build_pack(rt, deal_id, builder="user:auditor")
    with rt.db.uow() as uow:
        entry = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == EVIDENCE_ACTION)).one()
        assert entry.actor == "user:auditor" and entry.subject.startswith("deal:")
    second = build_pack(rt, deal_id, builder="user:auditor")
    lines = _members(second)["audit.jsonl"].decode().splitlines()
    assert (
        json.loads(lines[-1])["action"] == EVIDENCE_ACTION
        and len(lines) == len(_members(first)["audit.jsonl"].decode().splitlines()) + 1
    )
    assert verify_pack(second, [rt.keys.platform_certificate_pem]).valid


def test_cli_builds_and_verifies_with_chinese_output(
    app: Flask, rt: Runtime, users: dict[str, int], tmp_path: Path
) -> None:
    deal_no = load_deal(rt, confirmed_deal(rt)).deal_no
    runner = app.test_cli_runner()
    path = tmp_path / "pack.zip"
    built = runner.invoke(args=["evidence", "build", deal_no, "-o", str(path)])
    assert built.exit_code == 0, built.output
    assert "证据包已生成" in built.output
    verified = runner.invoke(args=["evidence", "verify", str(path)])
    assert verified.exit_code == 0, verified.output
    assert "证据包核验通过" in verified.output
    as_json = runner.invoke(args=["evidence", "verify", str(path), "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["valid"] is True
    path.write_bytes(_flip(path.read_bytes()))
    broken = runner.invoke(args=["evidence", "verify", str(path)])
    assert broken.exit_code == 1 and "证据包核验未通过" in broken.output
    missing = runner.invoke(args=["evidence", "build", "NO-SUCH-DEAL", "-o", str(tmp_path / "x.zip")])
    assert missing.exit_code != 0 and "存管单不存在" in missing.output


def test_download_needs_the_role_and_the_verify_page_refuses_garbage_politely(
    rt: Runtime, login: Callable[[str], FlaskClient]
) -> None:
    deal_id = confirmed_deal(rt)
    for role in ("agent", "finance", "admin"):
        assert login(role).get(f"/evidence/deals/{deal_id}.zip").status_code == 403, role
    client = login("auditor")
    console = client.get(f"/admin/deals/{deal_id}")
    assert console.status_code == 200 and f'href="/evidence/deals/{deal_id}.zip"' in console.text
    assert "下载证据包" in console.text
    answer = client.get(f"/evidence/deals/{deal_id}.zip")
    assert answer.status_code == 200 and answer.mimetype == "application/zip"
    assert client.get("/evidence/deals/999999.zip").status_code == 404
    with rt.db.uow() as uow:
        entry = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == EVIDENCE_ACTION)).one()
        assert entry.actor == "user:auditor", "who downloaded which deal"
    assert login("finance").get(f"/admin/deals/{deal_id}").text.count("下载证据包") == 0

    client = login("ops")
    page = client.get("/evidence/verify")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    token = csrf_token(page.text)

    def upload(content: bytes, name: str = "pack.zip", token: str | None = token) -> tuple[int, str]:
        data = {"pack": (BytesIO(content), name)} | ({"csrf_token": token} if token else {})
        sent = client.post("/evidence/verify", data=data, content_type="multipart/form-data")
        return sent.status_code, sent.text

    status, text = upload(answer.data)
    assert status == 200 and "证据包核验通过" in text
    for garbage in (b"", b"not a zip", b"PK\x03\x04" + b"\x00" * 100, answer.data[: len(answer.data) // 2]):
        status, text = upload(garbage)
        assert status in (200, 400) and ("核验未通过" in text or "这不是 ZIP" in text or "请选择" in text), garbage[:10]
    status, text = upload(_flip(answer.data))
    assert status == 200 and "证据包核验未通过" in text
    status, _ = upload(answer.data, token=None)
    assert status == 400, "CSRF"


def _stamper(folder: Path) -> tuple[Callable[[bytes], bytes], bytes]:
    """An RFC 3161 authority of the test's own (in process: the client's HTTP side is tested with the TSA process in
    test_trusted_time) and its certificate."""
    authority = open_authority(folder)

    def stamp(digest: bytes) -> bytes:
        status, _, token = tsa_protocol.read_reply(authority.respond(tsa_protocol.build_request(digest)))
        assert status == "granted" and token is not None, status
        return token.dump()

    return stamp, authority.identity.certificate_pem


@pytest.mark.usefixtures("users")
def test_a_timestamped_pack_carries_the_tsa_time_and_fails_without_it_or_with_a_forged_one(
    rt: Runtime, tmp_path: Path
) -> None:
    deal_id = confirmed_deal(rt)
    stamp, tsa_certificate = _stamper(tmp_path / "tsa")
    pack = build_pack(rt, deal_id, builder="user:ops", timestamper=stamp)
    platform = rt.keys.platform_certificate_pem
    members = _members(pack)
    assert json.loads(members["manifest.json"])["trusted_time"] == {
        "member": "manifest.tsr",
        "over": "SM3(manifest.sig)",
    }
    report = verify_pack(pack, [platform], [tsa_certificate])
    assert report.valid, report.problems
    assert report.timestamp is not None and report.timestamp["authority"] and report.timestamp["time"]

    built_at = _built_at(members)
    without = verify_pack(
        write_archive({k: v for k, v in members.items() if k != "manifest.tsr"}, built_at), [platform]
    )
    assert "manifest.tsr：清单注明附有可信时间戳，但文件缺失（被删除）" in without.problems
    flipped = verify_pack(
        write_archive({**members, "manifest.tsr": _flip(members["manifest.tsr"])}, built_at), [platform]
    )
    assert not flipped.valid and any(problem.startswith("manifest.tsr：可信时间戳无效") for problem in flipped.problems)
    forger, _ = _stamper(tmp_path / "forger")  # another TSA's token over the right digest: not the trusted TSA
    forged = {**members, "manifest.tsr": forger(sm3(members["manifest.sig"]))}
    result = verify_pack(write_archive(forged, built_at), [platform], [tsa_certificate])
    assert not result.valid and any(problem.startswith("manifest.tsr：可信时间戳无效") for problem in result.problems)


@pytest.mark.usefixtures("users")
def test_a_pack_is_not_built_while_another_process_chains_the_deals_entries(rt: Runtime) -> None:
    """Entries are chained by the workers; a pack built while one holds the chain's lock (PostgreSQL) would miss the
    deal's newest entries: it is refused (Busy, try again), never built short."""
    deal_id = confirmed_deal(rt)
    with rt.db.engine.connect() as chainer:
        postgresql = chainer.dialect.name == "postgresql"
        if postgresql:
            chainer.execute(text("SELECT pg_advisory_lock(:key)"), {"key": CHAIN_LOCK_KEY})
            with pytest.raises(Busy) as refused:
                build_pack(rt, deal_id, builder="user:auditor")
            assert refused.value.code == "AUDIT_NOT_CHAINED"
            chainer.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": CHAIN_LOCK_KEY})
        chainer.rollback()
    assert verify_pack(build_pack(rt, deal_id, builder="user:auditor"), [rt.keys.platform_certificate_pem]).valid
