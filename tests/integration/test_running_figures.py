"""The console's running totals (issue 21): after random postings, holds, their posts and voids, linked batches,
rolled-back transactions, deal state changes and folds at random moments, the kept figures (folded totals plus
unfolded deltas) equal a full recount from the book, on both databases, through both posting paths (PostgreSQL's
`ledger_apply` for single operations, the batch engine for linked ones)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import func, select

from app.db.figure_models import FigureDelta, FigureTotal
from app.db.models import Deal
from app.deals import service as deals
from app.domain import ledger
from app.domain.ledger import TransferSpec
from app.figures import totals
from app.ledger.repo import LedgerRepository
from app.ops import dashboard
from app.platform.errors import LedgerError
from app.platform.runtime import Runtime
from tests.factories import RESALE_FORM, actor

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
STATES = ("draft", "confirmed", "funded", "transferred", "closed")


def _kept_equals_recount(rt: Runtime) -> totals.Figures:
    with rt.db.uow() as uow:
        connection = uow.session.connection()
        kept, counted = totals.read(connection), totals.recount(connection)
    assert kept == counted
    return kept


def test_kept_figures_equal_a_recount_after_random_changes_and_folds(rt: Runtime, users: dict) -> None:
    rng = random.Random(45)
    book = []
    for city in ("110000", "310000", "110000"):
        deal_id = deals.create_deal(rt, actor(rt, "agent"), city, "resale_escrow", RESALE_FORM)
        with rt.db.uow() as uow:
            deal = uow.session.get(Deal, deal_id)
            assert deal is not None
            book.append((deal_id, deal.deal_no))
    with rt.db.uow() as uow:
        LedgerRepository(uow.session).ensure_account(ledger.bank_clearing("ceb"))
        uow.commit()
    holds: list[str] = []
    folds = 0
    for n in range(70):
        deal_id, deal_no = rng.choice(book)
        custody = ledger.deal_custody(deal_no).code
        choice = rng.random()
        with rt.db.uow() as uow:
            repo = LedgerRepository(uow.session)
            try:
                if choice < 0.35:
                    fen = rng.randint(1, 50_000)
                    repo.post(TransferSpec(f"arrival:ceb:R{n}", "bank_clearing:ceb", custody, fen, "arrival"), at=NOW)
                elif choice < 0.45:  # two arrivals all-or-nothing: the batch engine on both databases
                    other = ledger.deal_custody(rng.choice(book)[1]).code
                    repo.post_linked(
                        [
                            TransferSpec(f"arrival:ceb:L{n}a", "bank_clearing:ceb", custody, 1_00, "arrival"),
                            TransferSpec(f"arrival:ceb:L{n}b", "bank_clearing:ceb", other, 2_00, "arrival"),
                        ],
                        at=NOW,
                    )
                elif choice < 0.55:
                    spec = TransferSpec(f"hold:{n}", custody, "bank_clearing:ceb", rng.randint(1, 20_000), "payout")
                    repo.hold(spec, at=NOW)
                    holds.append(spec.id)
                elif choice < 0.7 and holds:
                    held = holds.pop(rng.randrange(len(holds)))
                    if rng.random() < 0.5:
                        repo.post_pending(f"{held}:posted", held, at=NOW)
                    else:
                        repo.void_pending(f"{held}:void", held, at=NOW)
                elif choice < 0.78:
                    spec = TransferSpec(f"release:{n}", custody, "bank_clearing:ceb", rng.randint(1, 20_000), "payout")
                    repo.post(spec, at=NOW)
                elif choice < 0.85:  # a posting rolled back: its deltas go with it
                    repo.post(TransferSpec(f"gone:{n}", "bank_clearing:ceb", custody, 7_00, "arrival"), at=NOW)
                    continue  # the unit of work ends without a commit
                else:
                    deal = uow.session.get(Deal, deal_id)
                    assert deal is not None
                    deal.state = rng.choice(STATES)
            except LedgerError as error:
                assert error.code == "BALANCE_CONSTRAINT", error  # more than the deal holds: refused
                continue
            uow.commit()
        if rng.random() < 0.2:
            folds += totals.fold(rt) > 0
        if n % 10 == 9:
            _kept_equals_recount(rt)
    assert folds >= 3, "folds happened between the changes"

    kept = _kept_equals_recount(rt)
    with rt.db.uow() as uow:
        unfolded = uow.session.scalar(select(func.count()).select_from(FigureDelta))
    assert unfolded, "some deltas are still unfolded: the read adds them"
    assert totals.fold(rt) == unfolded
    assert _kept_equals_recount(rt) == kept, "folding changes no figure"
    with rt.db.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(FigureDelta)) == 0
        assert uow.session.scalar(select(func.count()).select_from(FigureTotal)) > 0

    figures = dashboard.compute(rt, NOW)
    by_city: Counter[str] = Counter()
    for key, balance in kept.custody.items():
        by_city[key.city_code] += balance
    assert sum(by_city.values()) > 0
    assert {s.key: s.value for s in figures.custody_by_city} == {k: v for k, v in by_city.items() if v}
    assert [(s.key, s.value) for s in figures.custody_by_product] == [("resale_escrow", sum(by_city.values()))]
    assert sum(s.value for s in figures.deals_by_state) == len(book)


def test_a_new_deal_and_its_state_change_are_counted_before_any_fold(rt: Runtime, users: dict) -> None:
    deal_id = deals.create_deal(rt, actor(rt, "agent"), "110000", "resale_escrow", RESALE_FORM)
    with rt.db.uow() as uow:
        deal = uow.session.get(Deal, deal_id)
        assert deal is not None
        before = deal.state
        deal.state = "closed"
        uow.commit()
    kept = _kept_equals_recount(rt)
    assert {key.state: count for key, count in kept.deals.items()} == {"closed": 1}, before
    assert kept.custody == {}, "an account without money is no figure"
