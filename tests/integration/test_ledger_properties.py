"""Stateful property test: random transfers, holds, posts, voids, duplicates, reversals, linked pairs and
hot-buffer folds against a plain-Python model; after every step the database agrees with the model and
every invariant holds. The clearing and income accounts are hot (buffered postings)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from app.domain.ledger import AccountSpec, TransferSpec, flag_violation
from app.ledger.repo import LedgerRepository, check_ledger
from app.platform.errors import LedgerError
from app.platform.runtime import Runtime

ACCOUNT_NAMES = ("clearing", "custody_a", "custody_b", "income")
AMOUNTS = st.integers(min_value=1, max_value=5_000)


def _specs(prefix: str) -> dict[str, AccountSpec]:
    return {
        "clearing": AccountSpec(f"{prefix}:clearing", "asset", "清算", credits_must_not_exceed_debits=True, hot=True),
        "custody_a": AccountSpec(f"{prefix}:custody_a", "liability", "存管A", debits_must_not_exceed_credits=True),
        "custody_b": AccountSpec(f"{prefix}:custody_b", "liability", "存管B", debits_must_not_exceed_credits=True),
        "income": AccountSpec(f"{prefix}:income", "income", "收入", hot=True),
    }


def machine_for(rt: Runtime) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.prefix = uuid.uuid4().hex[:10]
            self.specs = _specs(self.prefix)
            self.totals = {name: [0, 0, 0, 0] for name in ACCOUNT_NAMES}  # debits/credits posted, pending
            self.transfers: dict[str, tuple[str, str, int, str]] = {}  # id -> (debit, credit, amount, kind)
            self.codes: dict[str, str] = {}  # id -> transfer code
            self.open_holds: list[str] = []
            self.count = 0
            with rt.db.uow() as uow:
                repo = LedgerRepository(uow.session)
                for spec in self.specs.values():
                    repo.ensure_account(spec)
                uow.commit()

        def _id(self) -> str:
            self.count += 1
            return f"{self.prefix}:{self.count}"

        def _allowed(self, debit: str, credit: str, posted: int, pending: int) -> bool:
            for name, side in ((debit, 0), (credit, 1)):
                t = list(self.totals[name])
                t[side] += posted
                t[2 + side] += pending
                if flag_violation(self.specs[name], *t) is not None:
                    return False
            return True

        def _move(self, debit: str, credit: str, posted: int, pending: int) -> None:
            self.totals[debit][0] += posted
            self.totals[credit][1] += posted
            self.totals[debit][2] += pending
            self.totals[credit][3] += pending

        def _run(self, operation, expect_ok: bool):  # type: ignore[no-untyped-def]
            with rt.db.uow() as uow:
                repo = LedgerRepository(uow.session)
                if expect_ok:
                    result = operation(repo)
                    uow.commit()
                    return result
                with pytest.raises(LedgerError):
                    operation(repo)
                return None

        @rule(
            debit=st.sampled_from(ACCOUNT_NAMES),
            credit=st.sampled_from(ACCOUNT_NAMES),
            amount=AMOUNTS,
            pending=st.booleans(),
        )
        def transfer(self, debit: str, credit: str, amount: int, pending: bool) -> None:
            if debit == credit:
                return
            transfer_id = self._id()
            ok = self._allowed(debit, credit, 0 if pending else amount, amount if pending else 0)
            spec = TransferSpec(transfer_id, self.specs[debit].code, self.specs[credit].code, amount, "arrival")
            self._run(lambda repo: repo.hold(spec) if pending else repo.post(spec), ok)
            if ok:
                self._move(debit, credit, 0 if pending else amount, amount if pending else 0)
                self.transfers[transfer_id] = (debit, credit, amount, "pending" if pending else "single")
                self.codes[transfer_id] = "arrival"
                if pending:
                    self.open_holds.append(transfer_id)

        @precondition(lambda self: self.transfers)
        @rule(data=st.data(), same_content=st.booleans())
        def repeat_an_id(self, data: st.DataObject, same_content: bool) -> None:
            transfer_id = data.draw(st.sampled_from(sorted(self.transfers)))
            debit, credit, amount, kind = self.transfers[transfer_id]
            if kind not in ("single", "pending"):
                return
            amount = amount if same_content else amount + 1
            code = self.codes[transfer_id]
            spec = TransferSpec(transfer_id, self.specs[debit].code, self.specs[credit].code, amount, code)
            created = self._run(lambda repo: (repo.hold if kind == "pending" else repo.post)(spec), same_content)
            if same_content:
                assert created is not None and created[1] is False, "a repeat creates nothing"

        @precondition(lambda self: self.open_holds)
        @rule(data=st.data(), post=st.booleans(), fraction=st.floats(min_value=0.01, max_value=1.0))
        def resolve_hold(self, data: st.DataObject, post: bool, fraction: float) -> None:
            pending_id = data.draw(st.sampled_from(self.open_holds))
            debit, credit, amount, _ = self.transfers[pending_id]
            posted = max(1, int(amount * fraction)) if post else 0
            ok = self._allowed(debit, credit, posted, -amount)
            resolution_id = self._id()
            if post:
                self._run(lambda repo: repo.post_pending(resolution_id, pending_id, posted), ok)
            else:
                self._run(lambda repo: repo.void_pending(resolution_id, pending_id), ok)
            assert ok, "resolving a hold never breaks a flag"
            self._move(debit, credit, posted, -amount)
            self.open_holds.remove(pending_id)
            self.transfers[resolution_id] = (debit, credit, posted or amount, "post_pending" if post else "void")
            self._run(lambda repo: repo.void_pending(self._id(), pending_id), False)  # never twice

        @precondition(lambda self: any(t[3] in ("single", "post_pending") for t in self.transfers.values()))
        @rule(data=st.data())
        def reverse(self, data: st.DataObject) -> None:
            posted = sorted(i for i, t in self.transfers.items() if t[3] in ("single", "post_pending"))
            original_id = data.draw(st.sampled_from(posted))
            debit, credit, amount, _ = self.transfers[original_id]
            reversal_id = self._id()
            ok = self._allowed(credit, debit, amount, 0)
            self._run(lambda repo: repo.reverse(original_id, reversal_id), ok)
            if ok:
                self._move(credit, debit, amount, 0)
                self.transfers[reversal_id] = (credit, debit, amount, "single")
                self.codes[reversal_id] = "reversal"

        @rule(
            first=st.sampled_from(ACCOUNT_NAMES),
            second=st.sampled_from(ACCOUNT_NAMES),
            third=st.sampled_from(ACCOUNT_NAMES),
            amounts=st.tuples(AMOUNTS, AMOUNTS),
        )
        def linked_pair(self, first: str, second: str, third: str, amounts: tuple[int, int]) -> None:
            """first -> second, then second -> third: both or neither."""
            if first == second or second == third:
                return
            ids = (self._id(), self._id())
            legs = ((first, second, amounts[0]), (second, third, amounts[1]))
            saved = {name: list(totals) for name, totals in self.totals.items()}
            ok = True
            for debit, credit, amount in legs:
                ok = ok and self._allowed(debit, credit, amount, 0)
                if ok:
                    self._move(debit, credit, amount, 0)
            if not ok:
                self.totals = saved
            specs = [
                TransferSpec(i, self.specs[d].code, self.specs[c].code, a, "release")
                for i, (d, c, a) in zip(ids, legs, strict=True)
            ]
            self._run(lambda repo: repo.post_linked(specs), ok)
            if ok:
                for transfer_id, (debit, credit, amount) in zip(ids, legs, strict=True):
                    self.transfers[transfer_id] = (debit, credit, amount, "single")
                    self.codes[transfer_id] = "release"

        @rule()
        def fold_hot_buffers(self) -> None:
            self._run(lambda repo: repo.fold_hot(), True)

        @invariant()
        def database_agrees_with_model_and_invariants_hold(self) -> None:
            with rt.db.uow() as uow:
                repo = LedgerRepository(uow.session)
                for name, spec in self.specs.items():
                    assert list(repo.totals(spec.code)) == self.totals[name], name
                report = check_ledger(uow.session)
            assert report.ok, report.problems

    return LedgerMachine


def test_random_ledger_histories_keep_every_invariant(rt: Runtime) -> None:
    run_state_machine_as_test(
        machine_for(rt),
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            derandomize=True,
        ),
    )
