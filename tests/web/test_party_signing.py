"""Parties sign on a phone (issue 20): the links sent by SMS at confirmation, the real-name check (name, ID
number, one-time code from the SMS simulator's log), the signature into each party's reserved field, then the
bank's countersignature; refusals in Chinese (wrong ID number, wrong code, the other party's identity, a used or
expired link); `flask agreement verify` reports every signer valid with its chain."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from app.agreements.countersign import COUNTERSIGN_JOB
from app.agreements.service import verify_agreement_pdf
from app.crypto import sm3
from app.db.audit_models import AuditEntry
from app.db.models import Deal, Job
from app.db.signing_models import SigningRequest
from app.deals import service as deals
from app.platform.runtime import Runtime
from app.queue.worker import run_one
from app.signing import clients
from app.signing.sms import SimulatedSms
from app.tsa.authority import open_authority
from app.tsa.protocol import build_request, read_reply
from tests.conftest import PASSWORD, csrf_token, make_config
from tests.factories import INTENT_FORM, RESALE_FORM, actor, load_deal
from tests.integration.simulator_support import bank_over_http

BUYER_PHONE, SELLER_PHONE = "13912345678", "13812345678"
FORM = {**RESALE_FORM, "buyer_phone": BUYER_PHONE, "seller_phone": SELLER_PHONE}
BUYER = ("张三", "11010519491231002X")
SELLER = ("李四", "110101198001010053")


def _outbox(rt: Runtime, phone: str) -> list[str]:
    assert isinstance(rt.sms, SimulatedSms)
    return [message["text"] for message in rt.sms.messages(phone)]


def _token(rt: Runtime, phone: str) -> str:
    (link,) = [text for text in _outbox(rt, phone) if "/sign/" in text]
    match = re.search(r"/sign/([A-Za-z0-9_-]+)", link)
    assert match
    return match.group(1)


def _last_code(rt: Runtime, phone: str) -> str:
    match = re.search(r"验证码为 (\d{6})", _outbox(rt, phone)[-1])
    assert match, "the last message is a code"
    return match.group(1)


def _post(client: FlaskClient, token: str, step: str, **data: str) -> str:
    page = client.get(f"/sign/{token}").text
    token_page = page if 'name="csrf_token"' in page else client.get("/login").text  # the session's token
    answer = client.post(f"/sign/{token}/{step}", data={"csrf_token": csrf_token(token_page), **data})
    return client.get(f"/sign/{token}").text if answer.status_code == 303 else answer.text


def _check(client: FlaskClient, token: str, who: tuple[str, str], code: str) -> str:
    return _post(client, token, "check", name=who[0], id_number=who[1], code=code)


def _sign_as(rt: Runtime, client: FlaskClient, token: str, phone: str, who: tuple[str, str]) -> str:
    _post(client, token, "code")
    assert "身份核验通过" in _check(client, token, who, _last_code(rt, phone))
    return _post(client, token, "sign", confirm="yes")


def _confirmed(rt: Runtime) -> int:
    rt.party_signing = True
    who = actor(rt, "agent")
    deal_id = deals.create_deal(rt, who, "110000", "resale_escrow", FORM)
    deals.confirm_agreement(rt, who, deal_id)
    return deal_id


def test_both_parties_sign_on_their_phones_then_the_bank_and_every_signature_verifies(
    app: Flask, rt: Runtime, users: dict, client: FlaskClient, keys_dir: Path, tmp_path: Path
) -> None:
    authority = open_authority(tmp_path / "tsa")  # in process (the TSA's HTTP side: test_trusted_time)

    def stamp(digest: bytes) -> bytes:
        status, _, token = read_reply(authority.respond(build_request(digest)))
        assert status == "granted" and token is not None
        return token.dump()

    rt.timestamper = lambda: stamp  # type: ignore[method-assign]
    deal_id = _confirmed(rt)
    payer, payee = _token(rt, BUYER_PHONE), _token(rt, SELLER_PHONE)
    with rt.db.uow() as uow:
        stored = [row.token_hash for row in uow.session.scalars(select(SigningRequest))]
        assert len(stored) == 2 and payer not in stored and payee not in stored, "only hashes are kept"
        assert uow.session.scalar(select(Job).where(Job.kind == COUNTERSIGN_JOB)) is None, "the bank waits"

    page = client.get(f"/sign/{payee}")
    assert page.status_code == 200 and "请等待付款方先完成签署" in page.text and "李*" in page.text
    assert SELLER[1] not in page.text and page.headers["Referrer-Policy"] == "no-referrer"
    assert "请等待付款方先完成签署" in _post(client, payee, "sign", confirm="yes")

    first = client.get(f"/sign/{payer}")
    assert "张*" in first.text and "139****5678" in first.text and BUYER[1] not in first.text
    assert 'name="csrf_token"' in first.text and "<script" not in first.text
    assert "资金存管协议" in client.get(f"/sign/{payer}/agreement.html").text
    assert "验证码已发送至 139****5678" in _post(client, payer, "code")
    assert "验证码发送过于频繁" in _post(client, payer, "code")
    code = _last_code(rt, BUYER_PHONE)
    assert "姓名或证件号码与协议登记的信息不一致" in _check(client, payer, (BUYER[0], "110105194912310037"), code)
    assert "姓名或证件号码与协议登记的信息不一致" in _check(client, payer, SELLER, code), "not the other party"
    wrong = "000000" if code != "000000" else "111111"
    assert "验证码不正确，还可尝试 4 次" in _check(client, payer, BUYER, wrong)
    assert "请先完成身份核验" in _post(client, payer, "sign", confirm="yes")
    assert "身份核验通过" in _check(client, payer, BUYER, code)
    assert "请勾选确认后再签署" in _post(client, payer, "sign")
    done = _post(client, payer, "sign", confirm="yes")
    assert "签署完成" in done and "买方（张*）" in done
    used = client.get(f"/sign/{payer}")
    assert used.status_code == 410 and "该签署链接已使用" in used.text

    assert "签署完成" in _sign_as(rt, client, payee, SELLER_PHONE, SELLER)
    parties_signed = load_deal(rt, deal_id).agreement
    assert parties_signed is not None
    with bank_over_http(rt, keys_dir, tmp_path):
        while run_one(rt, "test-worker"):
            pass
    agreement = load_deal(rt, deal_id).agreement
    assert agreement is not None and agreement.pdf.startswith(parties_signed.pdf)
    platform, buyer, seller, bank, closing = verify_agreement_pdf(rt, agreement.pdf, require_timestamp=True)
    assert all(report.valid for report in (platform, buyer, seller, bank, closing)) and closing.document_timestamp
    assert buyer.timestamp is not None and buyer.timestamp.valid and seller.timestamp is not None
    assert platform.certification_level == 2 and (buyer.field_name, seller.field_name) == ("PartyPayer", "PartyPayee")
    assert (buyer.signer_subject, seller.signer_subject) == ("张三", "李四") and closing.covers_whole_file
    assert buyer.superseded_cleanly and seller.superseded_cleanly and not seller.changes_after_signing
    assert len(buyer.certificate_chain) == 2, "party certificate -> platform root"

    pdf_file = tmp_path / "agreement.pdf"
    pdf_file.write_bytes(agreement.pdf)
    answer = app.test_cli_runner().invoke(args=["agreement", "verify", "--require-timestamp", str(pdf_file)])
    assert answer.exit_code == 0, answer.output
    result = json.loads(answer.stdout)
    signers = [item["signer_subject"] for item in result["signatures"]]
    assert result["valid"] is True and signers[1:3] == ["张三", "李四"]
    assert result["signatures"][1]["certificate_chain"] == ["张三", "存管平台根证书"]
    assert "证书链 张三 → 存管平台根证书" in answer.stderr

    with rt.db.uow() as uow:
        actions = [entry.action for entry in uow.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
        details = json.dumps([entry.detail for entry in uow.session.scalars(select(AuditEntry))], ensure_ascii=False)
    for action in ("signing.requested", "signing.code_sent", "signing.check_failed", "signing.verified"):
        assert action in actions
    assert actions.count("agreement.party_signed") == 2 and BUYER[1] not in details and BUYER_PHONE not in details


def test_an_expired_link_is_refused(rt: Runtime, users: dict, client: FlaskClient) -> None:
    _confirmed(rt)
    token = _token(rt, SELLER_PHONE)
    real_clock = rt.clock
    rt.clock = lambda: real_clock() + timedelta(days=8)
    answer = client.get(f"/sign/{token}")
    assert answer.status_code == 410 and "签署链接已过期" in answer.text
    unknown = client.get("/sign/" + "x" * 43)
    assert unknown.status_code == 404 and "签署链接无效" in unknown.text


def test_the_deal_page_shows_who_signed_and_the_agent_sends_fresh_links(
    rt: Runtime, users: dict, login: Callable[[str], FlaskClient]
) -> None:
    deal_id = _confirmed(rt)
    old = _token(rt, SELLER_PHONE)
    ops = login("ops")
    answer = ops.post(
        f"/deals/{deal_id}/resend-signature",
        data={"csrf_token": csrf_token(ops.get("/login").text), "reason": "银行未签章"},
        follow_redirects=True,
    )
    assert "当事人尚未全部签署，银行将在双方签署后签章" in answer.text, "the bank signs after the parties"
    agent = login("agent")
    real_clock = rt.clock
    rt.clock = lambda: real_clock() + timedelta(days=8)
    page = agent.get(f"/deals/{deal_id}").text
    assert "当事人签署" in page and page.count("链接已过期") == 2 and 'id="reissue-signing-form"' in page
    rt.clock = real_clock
    answer = agent.post(f"/deals/{deal_id}/signing-links", data={"csrf_token": csrf_token(page)}, follow_redirects=True)
    assert "已向 2 位当事人重新发送签署链接" in answer.text and answer.text.count("待签署") == 2
    assert agent.get(f"/sign/{old}").status_code == 404, "the old link stops working"
    fresh = re.findall(r"/sign/([A-Za-z0-9_-]+)", _outbox(rt, SELLER_PHONE)[-1])
    assert fresh and fresh[0] != old and agent.get(f"/sign/{fresh[0]}").status_code == 200
    with rt.db.uow() as uow:
        reissued = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "signing.reissued")).all()
    assert len(reissued) == 2 and {entry.actor for entry in reissued} == {"user:agent"}


def test_the_form_requires_the_signing_parties_phones_at_their_fields(
    rt: Runtime, login: Callable[[str], FlaskClient]
) -> None:
    rt.party_signing = True
    agent = login("agent")
    page = agent.get("/deals/new?choice=110000:resale_escrow").text
    phone = re.search(r'<div class="field[^"]*" id="w-seller_phone".*?</div>', page, re.S)
    assert phone and "签署链接与验证码以短信发送至此号码" in phone.group(0) and 'aria-required="true"' in phone.group(0)
    without = {key: value for key, value in FORM.items() if key != "seller_phone"}
    answer = agent.post("/deals/new", data={**without, "csrf_token": csrf_token(page)})
    assert answer.status_code == 422
    field = re.search(r'<div class="field[^"]*" id="w-seller_phone".*?</div>', answer.text, re.S)
    assert field and "请填写卖方手机号" in field.group(0)
    wrong = agent.post("/deals/new", data={**FORM, "buyer_phone": "1391234", "csrf_token": csrf_token(page)})
    assert wrong.status_code == 422 and "买方手机号应为 11 位手机号码" in wrong.text
    with rt.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Deal)) == 0, "nothing created"
    rt.party_signing = False  # without party signing the phones stay optional, as the schema says
    assert agent.post("/deals/new", data={**without, "csrf_token": csrf_token(page)}).status_code == 302


def test_an_old_deal_without_a_phone_is_refused_at_confirm_with_the_way_forward(
    rt: Runtime, login: Callable[[str], FlaskClient]
) -> None:
    who = actor(rt, "agent")
    without = {key: value for key, value in FORM.items() if key != "seller_phone"}
    deal_id = deals.create_deal(rt, who, "110000", "resale_escrow", without)  # made while signing was off
    rt.party_signing = True
    agent = login("agent")
    page = agent.get(f"/deals/{deal_id}").text
    answer = agent.post(f"/deals/{deal_id}/confirm", data={"csrf_token": csrf_token(page)}, follow_redirects=True)
    assert "在线签署需要卖方的手机号" in answer.text
    assert "请由运营取消本存管单（取消存管单），再新建一单并填写卖方的手机号" in answer.text
    deal = load_deal(rt, deal_id)
    assert deal.state == "created" and deal.agreement is None
    with rt.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(SigningRequest)) == 0
    assert _outbox(rt, BUYER_PHONE) == [], "no link went out"
    ops = login("ops")  # the way forward: ops cancel it, the agent makes it again with the phones
    page = ops.get(f"/deals/{deal_id}").text
    ops.post(f"/deals/{deal_id}/actions/cancel", data={"csrf_token": csrf_token(page), "reason": "补登手机号"})
    assert load_deal(rt, deal_id).state == "cancelled"
    again = deals.create_deal(rt, who, "110000", "resale_escrow", FORM)
    deals.confirm_agreement(rt, who, again)
    assert load_deal(rt, again).state == "awaiting_account" and len(_outbox(rt, SELLER_PHONE)) == 1


def test_a_party_without_a_phone_field_does_not_sign_on_a_phone(rt: Runtime, users: dict) -> None:
    """意向金: the developer (a company) has no phone in the form; the buyer alone signs, then the bank."""
    rt.party_signing = True
    who = actor(rt, "agent")
    deal_id = deals.create_deal(rt, who, "310000", "intent_deposit", INTENT_FORM)
    deals.confirm_agreement(rt, who, deal_id)
    with rt.db.uow() as uow:
        requests = uow.session.scalars(select(SigningRequest)).all()
        assert [(request.role, request.position) for request in requests] == [("payer", 1)]
    agreement = load_deal(rt, deal_id).agreement
    assert agreement is not None and b"PartyPayer" in agreement.pdf and b"PartyPayee" not in agreement.pdf


def _audited(rt: Runtime, action: str) -> list[AuditEntry]:
    with rt.db.uow() as uow:
        return list(uow.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def _phone_client(app: Flask, address: str) -> FlaskClient:
    phone = app.test_client()
    phone.environ_base.update(REMOTE_ADDR=address, HTTP_USER_AGENT="TestPhone/1.0")
    return phone


def test_opening_a_signing_page_is_audited_once_per_session_and_day_and_shown_with_the_deal(
    app: Flask, rt: Runtime, login: Callable[[str], FlaskClient]
) -> None:
    deal_id = _confirmed(rt)
    token, deal_no = _token(rt, BUYER_PHONE), load_deal(rt, deal_id).deal_no
    phone = _phone_client(app, "203.0.113.45")
    assert phone.get(f"/sign/{token}").status_code == 200 and phone.get(f"/sign/{token}").status_code == 200
    (opened,) = _audited(rt, "signing.opened")
    assert (opened.actor, opened.subject) == ("party:payer", f"deal:{deal_no}")
    assert opened.detail["ip"] == "203.0.113.*" and "203.0.113.45" not in json.dumps(opened.detail)
    assert opened.detail["user_agent_sm3"] == sm3(b"TestPhone/1.0").hex()[:16]
    assert _phone_client(app, "2001:db8:1::5").get(f"/sign/{token}").status_code == 200, "another session"
    real_clock = rt.clock
    rt.clock = lambda: real_clock() + timedelta(days=1)
    phone.get(f"/sign/{token}")  # the next day
    assert [entry.detail["ip"] for entry in _audited(rt, "signing.opened")] == [
        "203.0.113.*",
        "2001:db8:1::*",
        "203.0.113.*",
    ]
    auditor = login("auditor").get(f"/admin/audit/?subject=deal:{deal_no}&action=signing.opened").text
    assert auditor.count("打开签署页面") >= 3 and "203.0.113.45" not in auditor


def test_one_address_is_limited_over_all_links_with_a_chinese_429_that_is_audited(
    app: Flask, rt: Runtime, users: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(clients.PER_HOUR, clients.CODE_SENT, 2)
    monkeypatch.setitem(clients.PER_HOUR, clients.CHECK_FAILED, 3)
    _confirmed(rt)
    payer, payee = _token(rt, BUYER_PHONE), _token(rt, SELLER_PHONE)
    phone, other = _phone_client(app, "198.51.100.7"), _phone_client(app, "198.51.100.8")
    assert "验证码已发送" in _post(phone, payer, "code") and "验证码已发送" in _post(phone, payee, "code")
    real_clock = rt.clock
    rt.clock = lambda: real_clock() + timedelta(minutes=2)  # past the link's one-minute wait
    sent = len(_outbox(rt, BUYER_PHONE))
    page = phone.get(f"/sign/{payer}").text
    refused = phone.post(f"/sign/{payer}/code", data={"csrf_token": csrf_token(page)})
    assert refused.status_code == 429 and "当前网络获取验证码过于频繁，请 1 小时后再试" in refused.text
    assert len(_outbox(rt, BUYER_PHONE)) == sent, "no code went out"
    assert "验证码已发送" in _post(other, payer, "code"), "another address is not limited"

    code = _last_code(rt, BUYER_PHONE)
    for token in (payer, payee, payer):
        assert "姓名或证件号码与协议登记的信息不一致" in _check(phone, token, (BUYER[0], "110105194912310037"), "0")
    page = phone.get(f"/sign/{payer}").text
    data = {"csrf_token": csrf_token(page), "name": BUYER[0], "id_number": BUYER[1], "code": code}
    blocked = phone.post(f"/sign/{payer}/check", data=data)
    assert blocked.status_code == 429 and "当前网络身份核验失败次数过多" in blocked.text, "refused before checking"
    with rt.db.uow() as uow:
        request = uow.session.scalars(select(SigningRequest).where(SigningRequest.role == "payer")).one()
        assert request.failed_checks == 2 and request.verified_at is None
    limited = _audited(rt, "signing.client_limited")
    assert [entry.detail["kind"] for entry in limited] == ["code", "check_failed"]
    assert {entry.detail["ip"] for entry in limited} == {"198.51.100.*"}
    assert "身份核验通过" in _check(other, payer, BUYER, code)
    rt.clock = lambda: real_clock() + timedelta(minutes=63)  # an hour later the address may try again
    assert "验证码已发送" in _post(phone, payee, "code")


def _countersign_jobs(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(Job).where(Job.kind == COUNTERSIGN_JOB)) or 0


def test_the_bank_is_asked_once_both_parties_signed_and_replayed_or_early_forms_change_nothing(
    rt: Runtime, users: dict, client: FlaskClient
) -> None:
    deal_id = _confirmed(rt)
    payer, payee = _token(rt, BUYER_PHONE), _token(rt, SELLER_PHONE)
    _post(client, payee, "code")
    assert "身份核验通过" in _check(client, payee, SELLER, _last_code(rt, SELLER_PHONE))
    before = load_deal(rt, deal_id).agreement
    assert before is not None
    assert "请等待付款方先完成签署" in _post(client, payee, "sign", confirm="yes"), "the payee before the payer"
    after = load_deal(rt, deal_id).agreement
    assert after is not None and after.pdf == before.pdf and _countersign_jobs(rt) == 0

    assert "签署完成" in _sign_as(rt, client, payer, BUYER_PHONE, BUYER)
    payer_signed = load_deal(rt, deal_id).agreement
    assert payer_signed is not None and _countersign_jobs(rt) == 0, "the payee has not signed: the bank waits"
    entries = len(_audited(rt, "agreement.party_signed"))
    page = client.get("/login").text  # the payer's page is gone: an attacker replays its forms with a token
    for step, data in (
        ("sign", {"confirm": "yes"}),
        ("check", {"name": BUYER[0], "id_number": BUYER[1]}),
        ("code", {}),
    ):
        replay = client.post(f"/sign/{payer}/{step}", data={"csrf_token": csrf_token(page), **data})
        assert replay.status_code == 410 and "该签署链接已使用" in replay.text, step
    replayed = load_deal(rt, deal_id).agreement
    assert replayed is not None and replayed.pdf == payer_signed.pdf and _countersign_jobs(rt) == 0
    assert len(_audited(rt, "agreement.party_signed")) == entries

    assert "签署完成" in _post(client, payee, "sign", confirm="yes"), "its check still holds"
    assert _countersign_jobs(rt) == 1, "the last signature queues the bank, once"
    again = client.post(f"/sign/{payee}/sign", data={"csrf_token": csrf_token(page), "confirm": "yes"})
    assert again.status_code == 410 and _countersign_jobs(rt) == 1


def test_ops_read_the_sms_simulators_outbox_in_the_console_and_never_with_a_gateway(
    rt: Runtime,
    login: Callable[[str], FlaskClient],
    keys_dir: Path,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _confirmed(rt)
    token = _token(rt, BUYER_PHONE)
    ops = login("ops")
    page = ops.get("/admin/sms/")
    assert page.status_code == 200 and "短信模拟" in page.text and "139****5678" in page.text
    assert f"/sign/{token}" in page.text and "打开签署页面" in page.text and BUYER_PHONE not in page.text
    _post(ops, token, "code")
    listed = ops.get("/admin/sms/").text
    assert _last_code(rt, BUYER_PHONE) in listed
    assert listed.index("验证码为") < listed.index(f"/sign/{token}"), "newest first"
    for role in ("agent", "auditor"):
        assert login(role).get("/admin/sms/").status_code == 403, role

    monkeypatch.setenv("CUNGUAN_SMS_URL", "http://127.0.0.1:9/sms")
    gateway_app = create_app(make_config(tmp_path / "instance", database_url, keys_dir))
    staff = gateway_app.test_client()
    form = {"username": "ops", "password": PASSWORD, "csrf_token": csrf_token(staff.get("/login").text)}
    assert staff.post("/login", data=form).status_code == 302
    assert staff.get("/admin/sms/").status_code == 404, "with an SMS gateway there is no simulator to read"
    assert "短信模拟" not in staff.get("/admin/").text, "nor a menu entry"
