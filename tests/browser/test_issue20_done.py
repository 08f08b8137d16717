"""Issue 20's done-when, composed of the real parts: a resale deal is created and confirmed by an agent in
Chromium (the platform certifies the agreement), signed by buyer and seller on a 390×844 page (links and codes
from the SMS simulator's outbox), countersigned by the bank simulator in its own process (the worker's job over
HTTP), stamped by the TSA in its own process (`python -m app.tsa serve`, certified by the platform CA), and
closed by the document timestamp. Then, offline (no database, no key folder): `flask agreement verify --root`
names every signer, its chain, its trusted time and "unchanged"; each tamper case is refused with its reason in
Chinese; the deal's evidence pack verifies and fails, naming the member, on any changed byte.

One deal for the whole module (one database, DATABASES[-1], as the other long browser tests): the tamper cases
are parametrised over copies of its final file."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from flask import Flask
from playwright.sync_api import Browser, Page
from pypdf import PdfReader

from app.crypto.openssl_provider import generate_sm2_private_key_pem, sm2_public_key_pem
from app.evidence.archive import write_archive
from app.evidence.verify import verify_pack
from app.pdf.sign import sign_pdf
from app.pdf.timestamps import add_signature_timestamp
from app.pdf.verify import verify_pdf_signatures
from app.pki.certificates import Usage
from app.pki.names import person_subject
from app.pki.store import crl_path, issue_and_record, root_certificate_path
from app.platform.runtime import Runtime
from app.queue.worker import run_one
from app.signing.sms import SimulatedSms
from app.tsa.authority import open_authority
from app.tsa.certify import certify_tsa
from app.tsa.protocol import build_request, read_reply
from tests.browser.conftest import chromium, no_horizontal_scroll, served
from tests.conftest import DATABASES, PASSWORD, fresh_database, make_config, platform_app, role_users
from tests.factories import RESALE_FORM, simulated_banks_folder
from tests.gmssl_interop import check_with_gmssl
from tests.integration.test_bank_simulator import _start_simulator
from tests.integration.test_evidence_pack import _built_at, _flip, _members
from tests.ports import port_of, reserve_port
from tests.security.test_pdf_verification import _incremental, _over_the_amount, _swapped_pages
from tests.tsa_support import running_tsa

ROOT = Path(__file__).resolve().parents[2]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
BUYER = ("张三", "11010519491231002X", "13912345678")
SELLER = ("李四", "110101198001010053", "13812345678")
PLATFORM_SEAL, CA_ROOT, TSA_NAME, BANK_SEAL = (
    "存管平台电子签章",
    "存管平台根证书",
    "存管平台时间戳服务",
    "存管银行电子签章（ceb）",
)


@dataclass
class Signed:
    """The module's one deal, signed by everyone, and what verifies it."""

    app: Flask
    rt: Runtime
    deal_no: str
    final: Path  # the agreement as downloaded after the document timestamp
    root: Path  # the platform CA's root: what an offline verifier trusts
    folder: Path


def _text_of(rt: Runtime, phone: str, pattern: str) -> str:
    """The last match of `pattern` in the SMS simulator's outbox for `phone` (what the party's phone shows)."""
    assert isinstance(rt.sms, SimulatedSms)
    found = [match for message in rt.sms.messages(phone) for match in re.findall(pattern, message["text"])]
    assert found, f"no {pattern} sent to {phone}"
    return found[-1]


def _agent_creates_and_confirms(browser: Browser, base_url: str) -> tuple[Page, str]:
    """The agent's intake form (both parties with phones), then 确认协议并签署; the agent's page stays open."""
    page = browser.new_context(viewport=DESKTOP, locale="zh-CN").new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{base_url}/login")
    page.fill('input[name="username"]', "agent")
    page.fill('input[name="password"]', PASSWORD)
    page.click('form:has(input[name="password"]) button[type="submit"]')
    page.wait_for_url(re.compile(r".*/deals$"))
    page.goto(f"{base_url}/deals/new?choice=110000:resale_escrow")
    form = {**RESALE_FORM, "buyer_phone": BUYER[2], "seller_phone": SELLER[2]}
    for name, value in form.items():
        if name == "payment_method":
            page.check(f'input[name="{name}"][value="{value}"]')
        elif name not in ("city_code", "product"):
            page.fill(f"#f-{name}", value)
    page.click('button[value="submit"]')
    page.wait_for_url(re.compile(r".*/deals/\d+$"))
    deal_url = page.url
    page.click('button:has-text("确认协议并签署")')
    page.wait_for_selector("text=下载已签署协议（PDF）")
    return page, deal_url


def _party_signs_on_a_phone(browser: Browser, rt: Runtime, party: tuple[str, str, str]) -> None:
    """The party opens the link from its SMS at 390×844, asks for the code, enters name, ID number and the code
    from the outbox, and confirms signing."""
    name, id_number, phone = party
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(_text_of(rt, phone, r"https?://\S+/sign/[A-Za-z0-9_-]+"))
        assert "签署资金存管协议" in page.inner_text("h1") and no_horizontal_scroll(page)
        page.click('button:has-text("获取验证码")')
        page.wait_for_selector("text=验证码已发送至")
        page.fill('input[name="name"]', name)
        page.fill('input[name="id_number"]', id_number)
        page.fill('input[name="code"]', _text_of(rt, phone, r"验证码为 (\d{6})"))
        page.click('button:has-text("核验身份")')
        page.wait_for_selector("#sign")
        assert no_horizontal_scroll(page)
        page.check('input[name="confirm"]')
        page.click('button:has-text("确认签署")')
        page.wait_for_selector("text=签署完成")
    finally:
        context.close()


def _run_jobs(rt: Runtime) -> None:
    while run_one(rt, "issue20-worker"):
        pass


@pytest.fixture(scope="module")
def signed(
    tmp_path_factory: pytest.TempPathFactory, keys_dir: Path, sqlite_schema: sqlite3.Connection, password_hash: str
) -> Iterator[Signed]:
    folder = tmp_path_factory.mktemp("issue20")
    keys = Path(shutil.copytree(keys_dir, folder / "keys"))  # the session's CA (same root); what it issues stays here
    with ExitStack() as stack:
        tsa_folder = folder / "tsa"
        certify_tsa(keys, tsa_folder)  # `flask tsa certify`: the platform CA issues the TSA's certificate
        tsa = stack.enter_context(running_tsa(tsa_folder))
        simulator = _start_simulator(folder / "bank_sim.db", simulated_banks_folder(keys_dir))
        stack.callback(simulator.stop)
        database_url = stack.enter_context(fresh_database(DATABASES[-1], folder, platform_tables=True))
        reservation = reserve_port()  # the web app's port, known before the app: where the bank sends callbacks
        stack.callback(reservation.close)
        base_url = f"http://127.0.0.1:{port_of(reservation)}"
        root = root_certificate_path(keys)
        config = replace(
            make_config(folder / "instance", database_url, keys, bank_url=f"{simulator.url}/ceb"),
            public_base_url=base_url,
            tsa_url=tsa.url,
            tsa_certificate=root,  # timestamps are trusted through the CA that issued the TSA's certificate
            party_signing=True,
        )
        app = platform_app(config, sqlite_schema)
        rt: Runtime = app.extensions["cunguan.runtime"]
        stack.callback(rt.db.dispose)
        role_users(rt, password_hash)
        stack.enter_context(served(app, port_of(reservation)))
        browser = stack.enter_context(chromium())

        agent, deal_url = _agent_creates_and_confirms(browser, base_url)
        deal_no = _text_of(rt, BUYER[2], r"协议 (\S+)：")
        _party_signs_on_a_phone(browser, rt, BUYER)
        _party_signs_on_a_phone(browser, rt, SELLER)
        _run_jobs(rt)  # the account opening and the bank's countersignature, over HTTP to the simulator process
        agent.reload()
        assert agent.inner_text("#party-signing tbody").count("已签署") == 2, "the agent sees both parties signed"
        download = agent.context.request.get(f"{deal_url}/agreement.pdf")
        assert download.ok and download.body().startswith(b"%PDF-")
        final = folder / f"{deal_no}.pdf"
        final.write_bytes(download.body())
        agent.context.close()
        yield Signed(app, rt, deal_no, final, root, folder)


# --- `flask agreement verify --root` in processes of its own: no database, no key folder ----------------------


def _offline_env(folder: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "CUNGUAN_INSTANCE_PATH": str(folder / "verifier"),
        "CUNGUAN_KEYS_DIR": str(folder / "verifier" / "no-keys"),  # never created: nothing is read from it
        "CUNGUAN_SECRET_KEY": "offline-verifier",
    }


def _verify_command(file: Path, root: Path, *extra: str) -> list[str]:
    verify = ["agreement", "verify", "--require-timestamp", "--root", str(root), *extra, str(file)]
    return [sys.executable, "-m", "flask", "--app", "wsgi", *verify]


@dataclass(frozen=True)
class Verdict:
    exit_code: int
    result: dict[str, Any]
    said: str  # what it told the person (stderr)

    def signature(self, signer: str) -> dict[str, Any]:
        return next(item for item in self.result["signatures"] if item["signer_subject"] == signer)


# --- the tamper cases: each a copy of the final file ---------------------------------------------------------


def _signature_field(pdf: bytes, name: str) -> tuple[int, int]:
    """The offsets of `name`'s /Contents hex string (from '<' to after '>')."""
    reader = PdfReader(BytesIO(pdf), strict=False)
    for reference in reader.trailer["/Root"]["/AcroForm"]["/Fields"]:
        field = reference.get_object()
        if field.get("/T") == name:
            byte_range = [int(value) for value in field["/V"].get_object()["/ByteRange"]]
            return byte_range[1], byte_range[2]
    raise AssertionError(f"no field {name}")


def _with_token(pdf: bytes, field: str, token: Callable[[bytes, bytes], bytes]) -> bytes:
    """`pdf` with `field`'s signature timestamp replaced by `token(signature value digest, current token)`, in
    place (the /Contents keeps its length: the later signatures' byte ranges stay as they were)."""
    start, end = _signature_field(pdf, field)
    signature = bytes.fromhex(pdf[start + 1 : end - 1].decode())
    signer = cms.ContentInfo.load(signature)["content"]["signer_infos"][0]
    (current,) = [a["values"][0] for a in signer["unsigned_attrs"] if a["type"].native == "signature_time_stamp_token"]
    replaced = add_signature_timestamp(signature, lambda digest: token(digest, current.dump())).hex().encode()
    assert len(replaced) <= end - start - 2, "the forged token fits the signature's room"
    return pdf[: start + 1] + replaced.ljust(end - start - 2, b"0") + pdf[end - 1 :]


def _untrusted_token(folder: Path) -> Callable[[bytes, bytes], bytes]:
    """A token from a TSA key and certificate of the forger's own (a genuine RFC 3161 answer, not ours)."""
    forger = open_authority(folder / "forger-tsa")

    def stamp(digest: bytes, _current: bytes) -> bytes:
        _, _, token = read_reply(forger.respond(build_request(digest)))
        assert token is not None
        return token.dump()

    return stamp


def _backdated(_digest: bytes, current: bytes) -> bytes:
    """The genuine token with its genTime a year earlier: the bytes of the signed TSTInfo changed."""
    signed_data = cms.ContentInfo.load(current)["content"]
    gen_time = signed_data["encap_content_info"]["content"].parsed["gen_time"].contents
    assert gen_time.startswith(b"20")
    earlier = str(int(gen_time[:4]) - 1).encode() + gen_time[4:]
    return current.replace(gen_time, earlier, 1)


def _amount_rect(pdf: bytes) -> tuple[float, float, float, float]:
    """Where page 1 prints the custody amount (¥1,234,567.89): what an overlay would hide."""
    found: list[tuple[float, float]] = []

    def visit(text: str, cm: list[float], tm: list[float], _font: object, _size: float) -> None:
        if text.strip() == "¥1,234,567.89":
            found.append((tm[4] * cm[0] + tm[5] * cm[2] + cm[4], tm[4] * cm[1] + tm[5] * cm[3] + cm[5]))

    PdfReader(BytesIO(pdf), strict=False).pages[0].extract_text(visitor_text=visit)
    ((x, y),) = found
    return x - 4, y - 10, x + 236, y + 30


def _expired_signature(signed: Signed, pdf: bytes) -> bytes:
    """One more signature on the file, by a certificate of our CA whose validity ended the day before the trusted
    time our TSA gives the signature."""
    key, now = generate_sm2_private_key_pem(), datetime.now(UTC)
    subject = person_subject("王五", "110101198001010053")
    keys = signed.rt.keys.folder
    certificate = issue_and_record(
        keys,
        sm2_public_key_pem(key),
        subject,
        usage=Usage.PERSONAL,
        valid_from=now - timedelta(days=2),
        valid_until=now - timedelta(days=1),
    )
    return sign_pdf(
        pdf,
        key,
        certificate,
        signer_name="王五",
        reason="过期证书",
        location="北京",
        signing_time=now,
        timestamper=signed.rt.timestamper(),
        chain=[signed.root.read_bytes()],
    )


def _revoked_crl(signed: Signed, serial: str) -> Path:
    """`flask ca revoke SERIAL --reason key_compromise` and `flask ca crl` in a copy of the CA (the module's own
    stays unrevoked for the evidence pack), the renewed CRL saved beside it."""
    copy = Path(shutil.copytree(signed.rt.keys.folder, signed.folder / "keys-revoking"))
    cli = signed.app.test_cli_runner()
    out = signed.folder / "renewed-crl.pem"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(signed.app.extensions["cunguan.config"], "keys_dir", copy)
        revoked = cli.invoke(args=["ca", "revoke", serial, "--reason", "key_compromise"])
        assert revoked.exit_code == 0 and "已吊销证书" in revoked.output, revoked.output
        renewed = cli.invoke(args=["ca", "crl", "--out", str(out)])
        assert renewed.exit_code == 0 and "吊销 1 张" in renewed.output, renewed.output
    assert out.read_bytes() == crl_path(copy).read_bytes()
    return out


# case -> (signer whose report names it, what it must say)
TAMPER_CASES = {
    "overlay": (PLATFORM_SEAL, "签署后第 1 页新增的签名控件带有覆盖页面的外观"),
    "annotation": (PLATFORM_SEAL, "签署后第 1 页新增了注释/表单控件"),
    "page_swap": (PLATFORM_SEAL, "签署后页面顺序被调换"),
    "untrusted_timestamp": (BUYER[0], "时间戳：时间戳服务证书不受信任"),
    "backdated_timestamp": (BUYER[0], "时间戳：时间戳内容与其签名摘要不一致（时间戳被篡改）"),
    "revoked": (BUYER[0], "被吊销，原因：密钥泄露"),
    "expired": ("王五", "证书已过期"),
}


@pytest.fixture(scope="module")
def verdicts(signed: Signed) -> dict[str, Verdict]:
    """The CLI's verdict on the final file and on each tampered copy. The processes run side by side: each pays
    the interpreter's and the app's start-up (about a second of CPU), the checks themselves are quick."""
    final = signed.final.read_bytes()
    (buyer_serial,) = [r.certificate_serial for r in verify_pdf_signatures(final) if r.signer_subject == BUYER[0]]
    copies = {
        "overlay": _incremental(final, _over_the_amount("signature_widget", _amount_rect(final))),
        "annotation": _incremental(final, _over_the_amount("freetext", _amount_rect(final))),
        "page_swap": _incremental(final, _swapped_pages),
        "untrusted_timestamp": _with_token(final, "PartyPayer", _untrusted_token(signed.folder)),
        "backdated_timestamp": _with_token(final, "PartyPayer", _backdated),
        "revoked": final,
        "expired": _expired_signature(signed, final),
    }
    extra = {"revoked": ["--crl", str(_revoked_crl(signed, buyer_serial))]}
    processes = {}
    for case, content in {"final": final, **copies}.items():
        path = signed.folder / f"{case}.pdf"
        path.write_bytes(content)
        command = _verify_command(path, signed.root, *extra.get(case, []))
        processes[case] = subprocess.Popen(
            command, cwd=ROOT, env=_offline_env(signed.folder), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    found = {}
    for case, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        assert stdout, stderr.decode(errors="replace")[-2000:]
        found[case] = Verdict(process.returncode, json.loads(stdout), stderr.decode())
    return found


def _signer_subject(pdf: bytes, field: str) -> dict[str, str]:
    """The subject of the certificate that signed `field`, as the signature carries it."""
    start, end = _signature_field(pdf, field)
    signed_data = cms.ContentInfo.load(bytes.fromhex(pdf[start + 1 : end - 1].decode()))["content"]
    subjects = [dict(choice.chosen.subject.native) for choice in signed_data["certificates"]]
    return next(subject for subject in subjects if subject["common_name"] != CA_ROOT)


def test_gmssl_checks_every_signature_timestamp_certificate_and_seal_of_the_final_file(signed: Signed) -> None:
    """An implementation other than ours and OpenSSL's: GmSSL computes every digest and checks every SM2 signature."""
    found = check_with_gmssl(signed.final.read_bytes())
    assert found == {
        "signatures": 4,  # the platform's certification, buyer, seller, the bank
        "signature timestamps": 4,
        "document timestamps": 1,
        "certificates": 6,  # root, platform seal, both parties' one-day certificates, the bank's, the TSA's
        "crls": 1,
        "seals": 2,  # the platform's and the bank's GB/T 38540 seals; persons sign without one
    }


def test_the_cli_names_every_signer_its_chain_its_trusted_time_and_unchanged(
    signed: Signed, verdicts: dict[str, Verdict]
) -> None:
    final = signed.final.read_bytes()
    buyer = {"common_name": BUYER[0], "serial_number": "110***********002X", "country_name": "CN"}
    assert _signer_subject(final, "PartyPayer") == buyer, "the name and the masked ID number, as the certificate has"
    assert _signer_subject(final, "PartyPayee")["serial_number"] == "110***********0053"
    verdict = verdicts["final"]
    assert verdict.exit_code == 0, verdict.said
    assert verdict.result["valid"] is True and "文件自每个签章签署后未被修改" in verdict.result["verdict"]
    signatures = verdict.result["signatures"]
    assert [(s["kind"], s["signer_subject"]) for s in signatures] == [
        ("signature", PLATFORM_SEAL),  # the certification comes first (DocMDP), then the parties in order
        ("signature", BUYER[0]),
        ("signature", SELLER[0]),
        ("signature", BANK_SEAL),
        ("document_timestamp", TSA_NAME),
    ]
    assert [s["field"] for s in signatures[1:3]] == ["PartyPayer", "PartyPayee"]
    chains = [s["certificate_chain"] for s in signatures[:4]]
    assert chains == [[PLATFORM_SEAL, CA_ROOT], [BUYER[0], CA_ROOT], [SELLER[0], CA_ROOT], [BANK_SEAL, CA_ROOT]]
    for item in signatures:
        trusted_time = item["trusted_time"]
        assert trusted_time["valid"] and trusted_time["authority"] == TSA_NAME, item
        assert item["valid"] and item["unchanged"] and item["unchanged_text"] == "签署后未被修改", item
    times = [datetime.fromisoformat(s["trusted_time"]["time"]) for s in signatures]
    assert times == sorted(times), "trusted times in signing order"
    for number, name in enumerate((PLATFORM_SEAL, BUYER[0], SELLER[0], BANK_SEAL), 1):
        assert f"签章 {number}（{name}，证书链 {name} → {CA_ROOT}）：可信时间 " in verdict.said
    assert f"签章 5（{TSA_NAME}）：文档时间戳 " in verdict.said and verdict.said.count("；签署后未被修改") == 5


@pytest.mark.parametrize("case", TAMPER_CASES)
def test_every_tamper_case_is_refused_with_its_reason(verdicts: dict[str, Verdict], case: str) -> None:
    verdict = verdicts[case]
    assert verdict.exit_code == 1 and verdict.result["valid"] is False, verdict.said
    signer, reason = TAMPER_CASES[case]
    named = verdict.signature(signer)
    found = named["errors"] + named["changes_after_signing"]
    assert not named["valid"] and any(reason in problem for problem in found), found
    assert verdict.result["verdict"].startswith("签章无效：") and reason in verdict.said


def test_the_evidence_pack_verifies_offline_and_fails_naming_the_member_on_any_changed_byte(signed: Signed) -> None:
    pack_path = signed.folder / "evidence.zip"
    built = signed.app.test_cli_runner().invoke(args=["evidence", "build", signed.deal_no, "-o", str(pack_path)])
    assert built.exit_code == 0 and "证据包已生成" in built.output, built.output
    pack = pack_path.read_bytes()
    members = _members(pack)
    agreement = f"agreements/{signed.deal_no}.pdf"
    assert members[agreement] == signed.final.read_bytes(), "the pack holds the agreement as downloaded"
    changed_path = signed.folder / "evidence-changed.zip"
    changed_path.write_bytes(_flip(pack, pack.index(members[agreement][:64]) + 1000))  # a byte of the PDF's data
    trust = ["--trust", str(signed.root), "--trust-tsa", str(signed.root)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "evidence", "verify", str(path), *trust, "--json"],
            cwd=ROOT,
            env=_offline_env(signed.folder),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for path in (pack_path, changed_path)
    ]
    (fine, _), (broken, _) = (process.communicate(timeout=120) for process in processes)
    assert [process.returncode for process in processes] == [0, 1], broken
    report = json.loads(fine)
    assert report["valid"] and report["deal_no"] == signed.deal_no
    assert [item["signer_subject"] for item in report["agreements"][agreement]][1:3] == [BUYER[0], SELLER[0]]
    assert any(agreement in problem for problem in json.loads(broken)["problems"])

    # one byte flipped in each member in turn (the ZIP written again around it): each fails, naming the member
    root = signed.root.read_bytes()
    built_at = _built_at(members)
    for path in members:
        result = verify_pack(write_archive({**members, path: _flip(members[path])}, built_at), [root], [root])
        assert not result.valid, path
        if path.startswith("manifest."):  # the manifest, its signature, its timestamp: named themselves
            assert any(problem.startswith(path) for problem in result.problems), (path, result.problems)
        else:
            assert f"{path}：SM3 摘要或大小与清单不符（文件被改动）" in result.problems, (path, result.problems)
