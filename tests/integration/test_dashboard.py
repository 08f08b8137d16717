"""Dashboard figures from a small ledger: days in Shanghai, in/out, payout rate, custody by city and bank,
deals by state, jobs; and the SVG charts."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.admin import charts
from app.db.ledger_models import LedgerTransfer
from app.db.models import Deal, Job, Payout
from app.deals import service as deals
from app.domain import ledger
from app.domain.ledger import TransferSpec
from app.ledger.repo import LedgerRepository
from app.ops import dashboard
from app.platform.errors import LedgerError
from app.platform.runtime import Runtime
from tests.factories import RESALE_FORM, actor

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai


def _deal(rt: Runtime, city: str) -> tuple[int, str]:
    deal_id = deals.create_deal(rt, actor(rt, "agent"), city, "resale_escrow", RESALE_FORM)
    with rt.db.uow() as uow:
        deal = uow.session.get(Deal, deal_id)
        assert deal is not None
        return deal_id, deal.deal_no


def _arrive(repo: LedgerRepository, ref: str, deal: tuple[int, str] | None, fen: int, at: datetime) -> None:
    target = ledger.deal_custody(deal[1]).code if deal else ledger.suspense("ceb").code
    code = "arrival" if deal else "unmatched_arrival"
    repo.post(TransferSpec(f"arrival:ceb:{ref}", "bank_clearing:ceb", target, fen, code, deal and deal[0]), at=at)


def test_figures_from_a_small_ledger(rt: Runtime, users: dict) -> None:
    beijing, shanghai = _deal(rt, "110000"), _deal(rt, "310000")
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        repo.ensure_account(ledger.bank_clearing("ceb"))
        repo.ensure_account(ledger.suspense("ceb"))
        # 2026-11-22 16:30 UTC is already the 23rd in Shanghai
        _arrive(repo, "R1", beijing, 1000_00, datetime(2026, 11, 22, 16, 30, tzinfo=UTC))
        _arrive(repo, "R2", shanghai, 300_00, NOW - timedelta(days=1))
        _arrive(repo, "R3", None, 5_00, NOW - timedelta(days=1))
        _arrive(repo, "OLD", beijing, 1_00, NOW - timedelta(days=20))  # outside the window, still in custody
        frozen = TransferSpec("frozen:G1", "bank_clearing:ceb", ledger.deal_custody(shanghai[1]).code, 50_00, "freeze")
        repo.post(frozen, at=NOW - timedelta(hours=2))  # a guarantee frozen at the bank: in custody, not 入金
        payout = TransferSpec("payout:P1", ledger.deal_custody(beijing[1]).code, "bank_clearing:ceb", 400_00, "payout")
        repo.hold(payout, at=NOW - timedelta(hours=1))
        repo.post_pending("payout:P1:posted", "payout:P1", at=NOW - timedelta(minutes=30))
        for status, when in (("succeeded", NOW), ("failed", NOW), ("succeeded", NOW - timedelta(days=1))):
            uow.session.add(
                Payout(
                    payout_id=f"P-{status}-{when.day}",
                    deal_id=beijing[0],
                    bank_code="ceb",
                    amount_fen=1_00,
                    payee_name="李四",
                    payee_account="6222000011112222",
                    status=status,
                    updated_at=when,
                )
            )
        uow.session.add_all(
            [
                Job(kind="open_virtual_account", payload={}, status="pending", attempts=0),
                Job(kind="submit_payout", payload={}, status="pending", attempts=3),
                Job(kind="submit_payout", payload={}, status="dead", attempts=12),
            ]
        )
        uow.commit()

    figures = dashboard.compute(rt, NOW)

    assert figures.days[0].day == date(2026, 11, 10) and figures.days[-1].day == date(2026, 11, 23)
    today, yesterday = figures.days[-1], figures.days[-2]
    assert (today.inbound_count, today.inbound_fen, today.inbound_direct) == (1, 1000_00, 1)
    assert (today.outbound_count, today.outbound_fen) == (1, 400_00), "the hold counts once, when posted"
    assert (today.frozen_count, today.frozen_fen) == (1, 50_00), "a freeze is counted apart from 入金"
    assert yesterday.frozen_count == 0
    assert (yesterday.inbound_count, yesterday.inbound_fen, yesterday.inbound_direct) == (2, 305_00, 1)
    assert (today.payouts_succeeded, today.payouts_failed, yesterday.payouts_succeeded) == (1, 1, 1)
    assert figures.payout_success_rate == 2 / 3
    assert figures.inbound_direct_rate == 2 / 3
    assert [(s.key, s.value) for s in figures.custody_by_city] == [("110000", 601_00), ("310000", 350_00)]
    assert figures.custody_by_city[0].label == "北京", "the city's name, not its code"
    assert [(s.key, s.label, s.value) for s in figures.custody_by_bank] == [("ceb", "中国光大银行", 951_00)]
    assert figures.custody_total_fen == 951_00
    assert sum(s.value for s in figures.deals_by_state) == 2
    assert all(s.label.startswith("二手房交易资金存管 · ") for s in figures.deals_by_state), "per product"
    assert figures.jobs == dashboard.JobFigures(pending=2, running=0, failing=1, dead=1, opening_queue=1)


def test_job_counts_stop_one_past_the_cap_and_say_so(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 100,000-contract import queues as many openings: the home page counts along an index up to the cap."""
    monkeypatch.setattr(dashboard, "JOB_COUNT_CAP", 3)
    with rt.db.uow() as uow:
        uow.session.add_all(
            [Job(kind="open_virtual_account", payload={}, status="pending", attempts=1) for _ in range(5)]
            + [Job(kind="submit_payout", payload={}, status="dead", attempts=12) for _ in range(2)]
        )
        uow.commit()
    jobs = dashboard.compute(rt, NOW).jobs
    assert jobs == dashboard.JobFigures(pending=4, running=0, failing=4, dead=2, opening_queue=4)
    assert [jobs.shown(f) for f in ("pending", "failing", "dead", "opening_queue")] == ["3+", "3+", "2", "3+"]


def test_empty_database_has_no_rates(rt: Runtime) -> None:
    figures = dashboard.compute(rt, NOW)
    assert len(figures.days) == dashboard.DAYS and figures.payout_success_rate is None
    assert figures.custody_by_city == [] and figures.alerts == []


def test_charts_escape_labels_and_scale_to_the_peak() -> None:
    drawing = charts.bars("城市", [("<b>北京</b>", 200), ("上海", 100)], str)
    assert "<b>" not in drawing and "&lt;b&gt;北京" in drawing
    assert drawing.count("<rect") == 2 and 'width="240.0"' in drawing and 'width="120.0"' in drawing
    columns = charts.columns("每日", ["11/22", "11/23"], [charts.Series("入金", [0, 10], "#000")], str)
    assert columns.count("<rect") == 3 and "11/23 入金：10" in columns  # legend swatch + two columns
    assert "暂无数据" in charts.bars("空", [], str)


def test_charts_are_drawn_for_a_phone_and_each_bank_keeps_one_distinct_colour() -> None:
    """Drawn 360 units wide, a 390 px phone shows 12-13 unit text at about 12-13 px; the bank chart and the
    opening-rate lines give a bank the same colour, and no two banks share one."""
    long_label = "二手房交易资金存管 · 已入金，待过户"
    drawing = charts.bars("状态", [(long_label, 3)], str)
    assert 'viewBox="0 0 360 ' in drawing and f'<text x="0" y="18" font-size="13">{long_label}</text>' in drawing
    colours = charts.colors_by_key(["icbc", "ceb", "ccb", "boc", "pab", "ceb"])
    assert len(colours) == 5 and len(set(colours.values())) == 5
    by_bank = charts.bars("银行", [("中国光大银行", 1), ("中国工商银行", 2)], str, [colours["ceb"], colours["icbc"]])
    assert f'fill="{colours["ceb"]}"' in by_bank and f'fill="{colours["icbc"]}"' in by_bank
    hours = [f"{h:02d}时" for h in range(24)]
    lines = charts.lines("开户", hours, [charts.Series("中国光大银行", [1] * 24, colours["ceb"])], str)
    shown = [label for label in hours if f">{label}</text>" in lines]
    assert shown[-1] == "23时" and 4 <= len(shown) <= 6, "a few hour labels, the latest hour among them"


def test_custody_figures_equal_a_recomputation_from_the_transfers_after_random_postings(
    rt: Runtime, users: dict
) -> None:
    """Random arrivals, holds, their posts and voids, and releases over deals of two cities: custody by city and
    by bank equals each custody account's posted transfers summed straight from ledger_transfers."""
    rng = random.Random(21)
    book = [_deal(rt, city) for city in ("110000", "310000", "110000")]
    with rt.db.uow() as uow:
        repo = LedgerRepository(uow.session)
        repo.ensure_account(ledger.bank_clearing("ceb"))
        holds: list[str] = []
        for n in range(80):
            deal = rng.choice(book)
            custody = ledger.deal_custody(deal[1]).code
            choice = rng.random()
            try:
                if choice < 0.5:
                    _arrive(repo, f"R{n}", deal, rng.randint(1, 50_000), NOW - timedelta(days=rng.randint(0, 30)))
                elif choice < 0.7:
                    spec = TransferSpec(f"hold:{n}", custody, "bank_clearing:ceb", rng.randint(1, 20_000), "payout")
                    repo.hold(spec, at=NOW)
                    holds.append(spec.id)
                elif choice < 0.9 and holds:
                    held = holds.pop(rng.randrange(len(holds)))
                    if rng.random() < 0.5:
                        repo.post_pending(f"{held}:posted", held, at=NOW)
                    else:
                        repo.void_pending(f"{held}:void", held, at=NOW)
                else:
                    spec = TransferSpec(f"release:{n}", custody, "bank_clearing:ceb", rng.randint(1, 20_000), "payout")
                    repo.post(spec, at=NOW)
            except LedgerError as error:
                assert error.code == "BALANCE_CONSTRAINT", error  # more than the deal holds: refused, nothing moved
        uow.commit()
        expected_city: Counter[str] = Counter()
        for deal_id, deal_no in book:
            account = repo.account(ledger.deal_custody(deal_no).code)
            credits = uow.session.scalar(
                select(func.coalesce(func.sum(LedgerTransfer.amount_fen), 0)).where(
                    LedgerTransfer.credit_account_id == account.id, LedgerTransfer.kind.in_(("single", "post_pending"))
                )
            )
            debits = uow.session.scalar(
                select(func.coalesce(func.sum(LedgerTransfer.amount_fen), 0)).where(
                    LedgerTransfer.debit_account_id == account.id, LedgerTransfer.kind.in_(("single", "post_pending"))
                )
            )
            city = uow.session.get(Deal, deal_id)
            assert city is not None
            expected_city[city.city_code] += int(credits) - int(debits)

    figures = dashboard.compute(rt, NOW)

    assert {s.key: s.value for s in figures.custody_by_city} == {k: v for k, v in expected_city.items() if v}
    assert [(s.key, s.value) for s in figures.custody_by_bank] == [("ceb", sum(expected_city.values()))]
    assert sum(expected_city.values()) > 0


def test_the_dashboard_page_counts_freezes_apart_and_draws_every_chart_for_a_phone(login: Callable[[str], Any]) -> None:
    page = login("ops").get("/admin/").text
    assert "冻结（担保，不计入金）" in page and page.count("冻结（担保）</text>") == 2, "a legend entry in both"
    assert page.count('<svg class="chart"') == page.count('viewBox="0 0 360 ') == 7
