"""Reconciliation against the real bank simulator over HTTP: a dropped arrival notice is repaired (补单) and
the deal moves on, a credit to an account we do not know goes to suspense, a payout our records call paid
but the bank never booked is reported, and running it again changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.bank_inbox import reconciliation, reconciliation_exceptions, suspense
from app.bank_inbox.store import inbox_partition
from app.db.audit_models import AuditEntry
from app.db.ledger_models import LedgerTransfer
from app.db.models import BankNotification, Payout, SuspenseItem
from app.db.reconciliation_models import ReconciliationException, ReconciliationRun
from app.deals import service as deals
from app.ledger.repo import LedgerRepository, check_ledger
from app.platform.config import BankEndpoint
from app.platform.errors import SignatureError, ValidationError
from app.platform.runtime import Runtime
from app.queue.worker import run_one
from tests.conftest import csrf_token
from tests.factories import (
    CUSTODY_FEN,
    RESALE_FORM,
    actor,
    bank_accepted,
    confirmed_deal,
    load_deal,
    notification,
    post_callback,
    post_confirmed,
)
from tests.integration.simulator_support import InProcessSimulator, make_simulator, serving

DAY = date(2026, 11, 20)
BUYER = {"payer_account": RESALE_FORM["buyer_bank_account"]}
FIRST_FEN = 100_000
ALIEN_FEN = 777_77


@dataclass
class World:
    rt: Runtime
    sim: InProcessSimulator
    client: FlaskClient
    keys_dir: Path

    def pump(self) -> None:
        """Platform jobs to the bank, the bank's due work, its callbacks to the platform - until quiet."""
        for _ in range(5):
            while run_one(self.rt, "test-worker"):
                pass
            self.sim.parts.operations.run_due()
            while self.sim.parts.worker.sender.deliver_next():
                pass

    def account_no(self, deal_id: int) -> str:
        account = load_deal(self.rt, deal_id).virtual_account
        assert account is not None and account.account_no, "account opened"
        return account.account_no

    def faults(self, **settings: object) -> None:
        answer = self.sim.client.put("/sim/faults/ceb", json=settings)
        assert answer.status_code == 200, answer.get_json()


@pytest.fixture
def world(
    app: Flask, rt: Runtime, client: FlaskClient, users: dict[str, int], tmp_path: Path, keys_dir: Path
) -> Iterator[World]:
    sim = make_simulator(tmp_path / "bank_sim.db", keys_dir)
    rt.clock = lambda: datetime.fromtimestamp(sim.clock.now, UTC)  # the platform lives the bank's day
    with serving(sim.client.application) as sim_url, serving(app) as platform_url:
        rt.banks["ceb"] = BankEndpoint("ceb", "中国光大银行", f"{sim_url}/ceb")
        rt.public_base_url = platform_url
        yield World(rt, sim, client, keys_dir)


def _funded_deal(world: World, *, drop_second: bool = False) -> int:
    """A deal paid in two parts; with `drop_second` the bank never sends the notice of the second."""
    deal_id = confirmed_deal(world.rt)
    world.pump()
    account_no = world.account_no(deal_id)
    world.sim.pay_in("ceb", account_no, FIRST_FEN, RESALE_FORM["buyer_name"], **BUYER)
    world.pump()
    if drop_second:
        world.faults(drop=1.0)
    world.sim.pay_in("ceb", account_no, CUSTODY_FEN - FIRST_FEN, RESALE_FORM["buyer_name"], **BUYER)
    world.pump()
    world.faults()
    return deal_id


def _book_the_day(world: World) -> dict[str, int]:
    dropped = _funded_deal(world, drop_second=True)
    assert load_deal(world.rt, dropped).state == "awaiting_funds", "the completing notice never came"
    paid = _funded_deal(world)
    deals.record_title_transferred(world.rt, actor(world.rt, "ops"), paid)
    world.pump()
    assert load_deal(world.rt, paid).state == "closed"
    paid_unheard = _funded_deal(world)
    deals.record_title_transferred(world.rt, actor(world.rt, "ops"), paid_unheard)
    world.faults(drop=1.0)
    world.pump()  # the bank pays, its payout_result is lost
    world.faults()
    assert load_deal(world.rt, paid_unheard).state != "closed"
    # money into an account the bank opened for someone else: we never hear of it
    alien = world.sim.open_account("ceb", "REQ-NOT-OURS")
    world.faults(drop=1.0)
    world.sim.pay_in("ceb", alien, ALIEN_FEN)
    world.faults()
    # a broken bank release says "paid" for a payout its books do not have (though it had accepted it)
    unpaid = _funded_deal(world)
    deals.record_title_transferred(world.rt, actor(world.rt, "ops"), unpaid)
    payout_id = load_deal(world.rt, unpaid).payouts[0].payout_id
    bank_accepted(world.rt, payout_id, "CEBP-BOGUS")
    body = notification("payout_result", payout_id=payout_id, bank_reference="CEBP-BOGUS", status="succeeded")
    status, _ = post_callback(world.client, world.keys_dir, body | {"failure_reason": None})
    assert status == 200 and load_deal(world.rt, unpaid).state == "closed"
    world.sim.clock.advance(24 * 3600)  # the next morning: yesterday's statement is complete
    return {"dropped": dropped, "paid": paid, "paid_unheard": paid_unheard, "unpaid": unpaid}


def _statuses(run: ReconciliationRun) -> list[tuple[str, str | None]]:
    return [(item.status, item.deal_no) for item in run.items]


def _transfer_count(rt: Runtime) -> int:
    with rt.db.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(LedgerTransfer)) or 0


def test_reconcile_repairs_reports_and_is_idempotent(world: World, login: Callable[[str], FlaskClient]) -> None:
    rt = world.rt
    booked = _book_the_day(world)
    deal_no = {name: load_deal(rt, deal_id).deal_no for name, deal_id in booked.items()}

    run = reconciliation.load_run(rt, reconciliation.reconcile(rt, "ceb", DAY))

    assert run.complete and run.line_count == 11  # eight arrivals, two payouts, one credit not for us
    assert run.counts == {"matched": 8, "repaired": 2, "suspense": 1, "payout_missing": 1, "balance_gap": 1}
    assert run.unresolved == 2
    (gap,) = [item for item in run.items if item.status == "balance_gap"]
    assert gap.amount_fen - gap.our_amount_fen == CUSTODY_FEN, "the bank kept what we think it paid"
    by_status = {status: [item for item in run.items if item.status == status] for status in run.counts}
    assert [(item.direction, item.deal_no, item.amount_fen) for item in by_status["repaired"]] == [
        ("credit", deal_no["dropped"], CUSTODY_FEN - FIRST_FEN),
        ("debit", deal_no["paid_unheard"], CUSTODY_FEN),
    ]
    (suspense,) = by_status["suspense"]
    assert (suspense.deal_no, suspense.amount_fen) == (None, ALIEN_FEN)
    (missing,) = by_status["payout_missing"]
    assert (missing.deal_no, missing.row_no) == (deal_no["unpaid"], None)
    assert [item.deal_no for item in by_status["matched"] if item.direction == "debit"] == [deal_no["paid"]]

    settled = load_deal(rt, booked["paid_unheard"])
    assert settled.state == "closed" and settled.payouts[0].status == "succeeded"
    assert settled.events[-1].detail.get("marker") == "补单"
    deal = load_deal(rt, booked["dropped"])
    assert deal.state == "funded", "the repair moved the deal as the notice would have"
    assert (deal.events[-1].event, deal.events[-1].detail.get("marker")) == ("funds_arrived", "补单")
    page = login("finance").get(f"/deals/{booked['dropped']}").text
    assert '<span class="badge">补单</span>' in page, "the repair shows on the deal's timeline"
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        assert repo.balance(f"custody:{deal.deal_no}") == CUSTODY_FEN
        assert repo.balance("suspense:ceb") == ALIEN_FEN
        assert check_ledger(uow.session).ok
        repairs = list(
            uow.session.scalars(
                select(BankNotification).where(
                    BankNotification.notification_id.startswith(reconciliation.REPAIR_PREFIX)
                )
            )
        )
        assert repairs, "the repairs are kept in the inbox"
        for row in repairs:
            assert row.partition_no == inbox_partition(json.loads(row.raw_body)), "in its account's partition"

    transfers, events = _transfer_count(rt), len(deal.events)
    again = reconciliation.load_run(rt, reconciliation.reconcile(rt, "ceb", DAY))
    assert again.id != run.id
    assert _statuses(again) == _statuses(run)
    assert _transfer_count(rt) == transfers
    assert len(load_deal(rt, booked["dropped"]).events) == events


def test_cli_prints_the_table_takes_a_file_and_refuses_an_unfinished_day(
    world: World, app: Flask, tmp_path: Path
) -> None:
    _book_the_day(world)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["reconcile", "--bank", "ceb", "--date", "2026-11-20"])
    assert result.exit_code == 1, result.output
    assert "已补单" in result.output and "对账单无此出金" in result.output and "未解决 2 项" in result.output

    saved = tmp_path / "ceb-2026-11-20.csv"
    saved.write_bytes(world.rt.gateway("ceb").fetch_statement(DAY).content)  # type: ignore[attr-defined]
    from_file = runner.invoke(args=["reconcile", "--bank", "ceb", "--date", "2026-11-20", "--file", str(saved)])
    assert from_file.exit_code == 1
    assert "文件 ceb-2026-11-20.csv" in from_file.output and "已补单" in from_file.output  # the earlier repair

    today = runner.invoke(args=["reconcile", "--bank", "ceb", "--date", "2026-11-21"])
    assert today.exit_code == 1 and "STATEMENT_INCOMPLETE" in today.output
    with world.rt.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(ReconciliationRun)) == 2


def test_finance_page_starts_a_run_of_an_unfinished_day_when_told(
    world: World, login: Callable[[str], FlaskClient]
) -> None:
    client = login("finance")
    token = csrf_token(client.get("/finance/reconciliation").text)
    form = {"csrf_token": token, "bank": "ceb", "date": "2026-11-20"}
    refused = client.post("/finance/reconciliation", data=form, follow_redirects=True)
    assert "对账未完成" in refused.text and "尚不完整" in refused.text
    answer = client.post("/finance/reconciliation", data=form | {"allow_incomplete": "1"})
    assert answer.status_code == 302 and "/finance/reconciliation/" in answer.headers["Location"]
    page = client.get(answer.headers["Location"]).text
    assert "（未完整）" in page and "用户 测试finance（finance）" in page
    assert "银行对账" in client.get("/deals").text, "finance finds the page in the navigation"


def test_statement_signature_and_digest_are_checked(world: World) -> None:
    statement = world.rt.gateway("ceb").fetch_statement(DAY)  # type: ignore[attr-defined]
    bank_key = world.rt.keys.bank_public_key_pem("ceb")
    reconciliation.verify_statement(statement, bank_key)
    tampered = type(statement)(**{**statement.__dict__, "content": statement.content + b"x"})
    with pytest.raises(SignatureError):
        reconciliation.verify_statement(tampered, bank_key)
    with pytest.raises(ValidationError, match="不完整"):
        reconciliation.reconcile(world.rt, "ceb", date(2026, 11, 20))  # the sim's today: not over yet


# --- case 6: both ways and by balance, exceptions open until resolved --------------------------------------


FORGED_REFERENCE = "CEBI20261120FORGED01"


def _forge_an_arrival(world: World) -> int:
    """A deal whose account the bank opened, marked paid by a correctly signed arrival the bank never booked."""
    deal_id = confirmed_deal(world.rt)
    world.pump()
    body = notification(
        "funds_arrived",
        bank_reference=FORGED_REFERENCE,
        account_no=world.account_no(deal_id),
        amount_fen=CUSTODY_FEN,
        payer_name=RESALE_FORM["buyer_name"],
        payer_account=RESALE_FORM["buyer_bank_account"],
        arrived_at="2026-11-20T03:00:00Z",
    )
    status, _ = post_callback(world.client, world.keys_dir, body)
    assert status == 200 and load_deal(world.rt, deal_id).state == "funded", "our ledger believed it"
    return deal_id


def _start_run(client: FlaskClient) -> str:
    token = csrf_token(client.get("/finance/reconciliation").text)
    answer = client.post("/finance/reconciliation", data={"csrf_token": token, "bank": "ceb", "date": "2026-11-20"})
    assert answer.status_code == 302 and "/finance/reconciliation/" in answer.headers["Location"], answer.text
    return str(answer.headers["Location"])


def _resolve(client: FlaskClient, exception_id: int, reason: str, page: str) -> str:
    token = csrf_token(client.get(page).text)
    form = {"csrf_token": token, "reason": reason, "next": page}
    answer = client.post(f"/finance/reconciliation/exceptions/{exception_id}/resolve", data=form)
    assert answer.status_code == 302 and answer.headers["Location"].endswith(page)
    return client.get(page).text


def _open_exceptions(rt: Runtime) -> dict[str, ReconciliationException]:
    return {found.kind: found for found in reconciliation_exceptions.list_exceptions(rt)}


def test_a_forged_credit_and_the_balance_gap_are_reported_and_stay_open_until_resolved_with_a_reason(
    world: World, app: Flask, login: Callable[[str], FlaskClient]
) -> None:
    rt = world.rt
    _funded_deal(world)  # real money, booked by the bank and by us
    forged = load_deal(rt, _forge_an_arrival(world)).deal_no
    provisional = reconciliation.load_run(rt, reconciliation.reconcile(rt, "ceb", DAY, allow_incomplete=True))
    assert provisional.counts == {"matched": 2, "ledger_only": 1, "balance_gap": 1}
    assert reconciliation_exceptions.list_exceptions(rt) == [], "the day is not over: nothing opened yet"
    counts = reconciliation_exceptions.run_counts(rt, provisional)
    assert "✗ 未解决 2 项（对账单未完整" in reconciliation_exceptions.verdict(counts)
    world.sim.clock.advance(24 * 3600)
    client = login("finance")

    page_url = _start_run(client)
    page = client.get(page_url).text
    run = reconciliation.load_run(rt, int(page_url.rsplit("/", 1)[1]))
    assert run.counts == {"matched": 2, "ledger_only": 1, "balance_gap": 1}
    (credit,) = [item for item in run.items if item.status == "ledger_only"]
    assert (credit.bank_reference, credit.deal_no, credit.our_amount_fen) == (FORGED_REFERENCE, forged, CUSTODY_FEN)
    (gap,) = [item for item in run.items if item.status == "balance_gap"]
    assert (gap.amount_fen, gap.our_amount_fen) == (CUSTODY_FEN, 2 * CUSTODY_FEN), "bank holds one deal's money"
    assert (run.closing_balance_fen, run.ledger_balance_fen) == (CUSTODY_FEN, 2 * CUSTODY_FEN)
    assert "平台有账银行无账" in page and FORGED_REFERENCE in page and "疑似伪造" in page
    assert "余额不符" in page and "差额 -¥1,234,567.89" in page
    assert "无未解决项" not in page and "✗ 未解决 2 项" in page
    opened = _open_exceptions(rt)
    assert set(opened) == {"ledger_only", "balance_gap"}
    metrics = client.get("/metrics").text
    assert 'cunguan_reconciliation_open_exceptions{bank="ceb",kind="ledger_only"} 1' in metrics

    again = client.get(_start_run(client)).text  # a second run finds the same things: same exceptions, open
    assert "无未解决项" not in again and "✗ 未解决 2 项" in again
    assert {kind: found.id for kind, found in _open_exceptions(rt).items()} == {k: f.id for k, f in opened.items()}

    refused = _resolve(client, opened["ledger_only"].id, "   ", page_url)
    assert "请填写处理原因" in refused and len(_open_exceptions(rt)) == 2, "no reason, still open"
    auditor = login("auditor")
    token = csrf_token(auditor.get(page_url).text)
    answer = auditor.post(
        f"/finance/reconciliation/exceptions/{opened['ledger_only'].id}/resolve",
        data={"csrf_token": token, "reason": "看过了"},
    )
    assert answer.status_code == 403 and len(_open_exceptions(rt)) == 2, "an auditor reads, does not resolve"

    client = login("finance")
    reason = "银行确认未入账，到账通知系伪造；已报安全部门，分录待冲正"
    page = _resolve(client, opened["ledger_only"].id, reason, page_url)
    assert f"已处理：{reason}" in page and "✗ 未解决 1 项" in page and "无未解决项" not in page
    with rt.db.uow() as uow:
        (entry,) = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "reconciliation.resolve"))
        assert entry.subject == f"reconciliation_exception:{opened['ledger_only'].id}"
        assert (entry.actor, entry.before, entry.after) == (
            "user:finance",
            {"status": "open"},
            {"status": "resolved", "resolution": reason},
        )
        assert entry.detail["key"] == f"ledger:arrival:ceb:{FORGED_REFERENCE}"
    listed = client.get("/finance/reconciliation/exceptions").text
    assert "余额不符" in listed and FORGED_REFERENCE not in listed, "the list shows what is still open"

    runner = app.test_cli_runner()
    report = runner.invoke(args=["reconcile", "--bank", "ceb", "--date", "2026-11-20"])
    assert report.exit_code == 1 and "✗ 未解决 1 项" in report.output and "无未解决项" not in report.output
    assert "银行期末余额：¥1,234,567.89  平台日切余额：¥2,469,135.78" in report.output
    assert f"已处理：{reason}" in report.output and "待处理" in report.output

    _resolve(client, opened["balance_gap"].id, "差额即伪造到账的金额，随该分录冲正处理", page_url)
    report = runner.invoke(args=["reconcile", "--bank", "ceb", "--date", "2026-11-20"])
    assert report.exit_code == 0 and report.output.rstrip().endswith("✓ 对账完成，无未解决项"), report.output
    assert reconciliation_exceptions.list_exceptions(rt) == [], "resolved stays resolved on the next run"


def test_a_credit_to_an_account_we_do_not_know_goes_back_to_its_sender(
    world: World, login: Callable[[str], FlaskClient]
) -> None:
    rt = world.rt
    alien = world.sim.open_account("ceb", "REQ-NOT-OURS", notify_url=rt.notify_url("ceb"))
    sender = {"payer_account": "6222020200556677889"}
    world.sim.pay_in("ceb", alien, ALIEN_FEN, "赵六", **sender)
    world.pump()
    (item,) = suspense.list_items(rt)
    assert (item.reason, item.deal, item.account_no) == ("unknown_account", None, alien)

    client = login("finance")
    token = csrf_token(client.get(f"/admin/suspense/{item.id}").text)
    form = {"csrf_token": token, "reason": "付款人确认汇错账户，申请原路退回"}
    answer = post_confirmed(client, f"/admin/suspense/{item.id}/return", form, follow_redirects=True)
    assert "已发起原路退回" in answer.text
    world.pump()

    with rt.db.uow() as uow:
        returned = uow.session.get(SuspenseItem, item.id)
        assert returned is not None and returned.status == "returned"
        (payout,) = uow.session.scalars(select(Payout))
        assert (payout.purpose, payout.deal_id, payout.status) == ("return", None, "succeeded")
        assert (payout.payee_name, payout.payee_account) == ("赵六", sender["payer_account"])
        assert payout.amount_fen == ALIEN_FEN
        assert LedgerRepository(uow.session).balance("suspense:ceb") == 0
        assert check_ledger(uow.session).ok
        (entry,) = uow.session.scalars(select(AuditEntry).where(AuditEntry.action == "suspense.return"))
        assert entry.detail["payout_id"] == payout.payout_id
    (paid,) = world.sim.state("ceb")["payouts"]
    assert (paid["account_no"], paid["payee_account"], paid["status"]) == (alien, sender["payer_account"], "succeeded")

    world.sim.clock.advance(24 * 3600)
    page = client.get(_start_run(client)).text
    assert "✓ 对账完成，无未解决项" in page, "the credit and its return are both on the statement, balance 0"
