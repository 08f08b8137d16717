"""Writing checked contract rows in batches: each batch one transaction of a few set-based INSERTs (deals,
their timeline, their custody ledger accounts, account requests, opening jobs, the import records) with deal
numbers allocated once per batch. Every row is built by the builder the one-at-a-time path uses (`deal_row`
and `blind_indexes` as create_deal and the mapper hook, `creation_row` and `transition_row` as the workflow
runner, `virtual_account_request` and `account_opening` as the `request_virtual_account` action, `job_row`
as `enqueue`, `account_row` as the ledger); only the inserting is done in bulk.

The account openings are only queued. Their jobs are spread over time at the bank's limits (per second, per
day) so that workers do not spin deferring 100,000 due jobs; the window of the bank's last sends
(`app/db/rate_limits.py`) remains what guarantees no opening ever goes faster than the bank allows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.banks.settings import opening_limits
from app.db.ledger_models import LedgerAccount
from app.db.models import Deal, DealEvent, ImportedContract, Job, VirtualAccount
from app.db.pii import blind_index, blind_indexes
from app.db.rate_limits import opening_state
from app.deals.account_request import account_opening, virtual_account_request
from app.deals.contract_import_report import ImportResult
from app.deals.contract_import_rows import PRODUCT, ValidRow
from app.deals.pinning import pin
from app.deals.service import DealOrigin, advisory_lock, allocate_deal_numbers, creation_row, deal_row
from app.deals.workflow import transition_row
from app.definitions.pins import deal_pins
from app.domain import ledger
from app.domain.contract_import import BadRow, OpeningEstimate, opening_slot
from app.domain.rate_limit import Limits
from app.ledger.repo import account_row
from app.platform.runtime import Runtime
from app.queue.jobs import job_row

IMPORT_LOCK = "contract_import"  # one importer writes a batch at a time (PostgreSQL advisory lock)
IMPORTED_LABEL = "新建存管单（存量合同导入）"


@dataclass
class _BankQueue:
    """The opening schedule of one bank during this import: the next position in its queue."""

    limits: Limits
    pace_per_s: float  # what the bank's window achieves (rate_limit.achievable_per_second)
    start: datetime
    opened_today: int
    position: int

    def next_slot(self) -> datetime:
        slot = opening_slot(self.limits, self.start, self.opened_today, self.position, self.pace_per_s)
        self.position += 1
        return slot


class BatchWriter:
    """Writes batches of checked rows for one import (deals owned by `user_id`, timeline naming `actor`) and
    keeps each bank's opening queue across the batches."""

    def __init__(self, rt: Runtime, user_id: int, actor: str, result: ImportResult) -> None:
        self.rt, self.user_id, self.actor, self.result = rt, user_id, actor, result
        self.queues: dict[str, _BankQueue] = {}
        self._pins: dict[tuple[str, str], dict[str, str]] = {}

    def pins(self, city_code: str, workflow_id: str, version: int, template: str, bank_code: str) -> dict[str, str]:
        """The definitions the import's deals of a city and bank pin (read once per city, bank and import)."""
        if (city_code, bank_code) not in self._pins:
            pins = deal_pins(self.rt.definitions, PRODUCT, workflow_id, version, template, bank_code)
            self._pins[city_code, bank_code] = pins
        return self._pins[city_code, bank_code]

    def write(self, batch: list[ValidRow]) -> None:
        with self.rt.db.uow() as uow:
            session = uow.session
            now = self.rt.clock()
            advisory_lock(session, IMPORT_LOCK)
            batch = self.new_only(session, batch)
            if batch:
                prefix = self.rt.products.get(PRODUCT).deal_prefix
                numbers = allocate_deal_numbers(session, now, prefix, [row.city.code for row in batch])
                deal_ids = self.insert_deals(session, batch, numbers, now)
                self.insert_followers(session, batch, numbers, deal_ids, now)
                for code in sorted({row.city.code for row in batch}):
                    city = next(row.city for row in batch if row.city.code == code)
                    pin(session, city.resolved, city.city, now)
            uow.commit()
        self.result.imported += len(batch)

    def new_only(self, session: Session, batch: list[ValidRow]) -> list[ValidRow]:
        """The rows not imported before (those are skipped) and with no rent-custody deal of the same contract
        already (made at the intake: reported)."""
        keys = [(row.city.code, row.contract_no) for row in batch]
        imported = imported_keys(session, set(keys))  # by another import since the chunk was read
        self.result.already_imported += sum(key in imported for key in keys)
        fresh = [row for row in batch if (row.city.code, row.contract_no) not in imported]
        existing = _deals_of_contracts(session, [(row.city.code, row.contract_no) for row in fresh])
        for row in fresh:
            deal_no = existing.get((row.city.code, row.contract_no))
            if deal_no:
                self.result.bad_rows.append(
                    BadRow(row.row_no, "lease_contract_no", f"该合同已有租金托管存管单 {deal_no}", row.contract_no)
                )
        return [row for row in fresh if (row.city.code, row.contract_no) not in existing]

    def insert_deals(self, session: Session, batch: list[ValidRow], numbers: list[str], now: datetime) -> list[int]:
        """The deals, made directly in the `imported` transition's target state."""
        values = []
        for row, deal_no in zip(batch, numbers, strict=True):
            city = row.city
            template = city.product.agreement_template
            pins = self.pins(city.code, city.definition.id, city.definition.version, template, row.bank_code)
            origin = DealOrigin(city.code, city.city, city.product, city.definition, row.bank_code, self.user_id, pins)
            deal = deal_row(deal_no, origin, city.transition.target, row.fields, now)
            deal.update(blind_indexes(Deal, deal.__getitem__))  # what the ORM's before_insert hook writes
            values.append(deal)
        return _insert_returning_ids(session, Deal.__table__, values, "deal_no", numbers)

    def insert_followers(
        self, session: Session, batch: list[ValidRow], numbers: list[str], deal_ids: list[int], now: datetime
    ) -> None:
        """The deals' timeline, custody accounts, account requests with their jobs, and import records."""
        events, accounts, requests, records = [], [], [], []
        for row, deal_no, deal_id in zip(batch, numbers, deal_ids, strict=True):
            source = {"file": self.result.source_name, "row": row.row_no}
            initial = row.city.definition.initial
            events.append(creation_row(deal_id, initial, self.actor, {"label": IMPORTED_LABEL, **source}, now))
            events.append(transition_row(deal_id, row.city.transition, self.actor, source, now))
            accounts.append(account_row(ledger.deal_custody(deal_no), deal_id, now))
            designated = row.city.product.payer.designated
            requests.append(virtual_account_request(deal_id, deal_no, row.bank_code, designated, now))
            records.append(self.import_record(row, deal_id, now))
        session.execute(insert(DealEvent.__table__), events)
        session.execute(_insert_ignoring_conflicts(session, LedgerAccount.__table__), accounts)
        slots = [self.queue(session, row.bank_code, now).next_slot() for row in batch]
        account_ids = _insert_returning_ids(session, VirtualAccount.__table__, requests, "deal_id", deal_ids)
        jobs = [
            job_row(*account_opening(account_id), now, max(0.0, (slot - now).total_seconds()), bank_code=row.bank_code)
            for account_id, slot, row in zip(account_ids, slots, batch, strict=True)
        ]
        session.execute(insert(Job.__table__), jobs)
        session.execute(insert(ImportedContract.__table__), records)

    def import_record(self, row: ValidRow, deal_id: int, now: datetime) -> dict[str, Any]:
        """The row that makes this contract imported, once per city and contract number (a re-run skips it)."""
        return {
            "city_code": row.city.code,
            "contract_no": row.contract_no,
            "contract_bidx": blind_index("cert", row.contract_no),  # what the ORM's before_insert hook writes
            "deal_id": deal_id,
            "source_name": self.result.source_name[:256],
            "row_no": row.row_no,
            "imported_by": self.actor,
            "imported_at": now,
        }

    def queue(self, session: Session, bank_code: str, now: datetime) -> _BankQueue:
        """The bank's opening queue as this import starts to add to it: its limits, today's openings so far
        and the accounts already waiting ahead of ours."""
        if bank_code not in self.queues:
            limits = opening_limits(session, self.rt.bank(bank_code))
            opened_today, pace = opening_state(session, bank_code, limits, now)
            waiting = session.scalar(
                select(func.count())
                .select_from(VirtualAccount)
                .where(VirtualAccount.bank_code == bank_code, VirtualAccount.status == "requested")
            )
            self.queues[bank_code] = _BankQueue(limits, pace, now, opened_today, waiting or 0)
        return self.queues[bank_code]

    def opening_estimates(self) -> list[OpeningEstimate]:
        """Per bank: how many openings this import queued and when the last of them can happen."""
        estimates = []
        for bank_code, queue in sorted(self.queues.items()):
            position = max(0, queue.position - 1)
            last = opening_slot(queue.limits, queue.start, queue.opened_today, position, queue.pace_per_s)
            estimates.append(OpeningEstimate(bank_code, queue.position, queue.limits, last, queue.pace_per_s))
        return estimates


def _by_city(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for city_code, contract_no in sorted(set(keys)):
        grouped.setdefault(city_code, []).append(contract_no)
    return grouped


def imported_keys(session: Session, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (city code, contract number) were imported already: one index lookup per city
    (`city_code = … AND contract_bidx IN (…)`; a row-value IN list is not an index scan on PostgreSQL)."""
    found: set[tuple[str, str]] = set()
    for city_code, numbers in _by_city(keys).items():
        number_of = {blind_index("cert", number): number for number in numbers}  # encrypted: by blind index
        query = select(ImportedContract.contract_bidx).where(
            ImportedContract.city_code == city_code, ImportedContract.contract_bidx.in_(number_of)
        )
        found.update((city_code, number_of[digest]) for digest in session.scalars(query))
    return found


def _deals_of_contracts(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(city code, contract number) -> the number of a rent-custody deal already made for that contract."""
    found: dict[tuple[str, str], str] = {}
    for city_code, numbers in _by_city(keys).items():
        number_of = {blind_index("cert", number): number for number in numbers}  # encrypted: by blind index
        query = select(Deal.certificate_bidx, Deal.deal_no).where(
            Deal.certificate_bidx.in_(number_of), Deal.city_code == city_code, Deal.product == PRODUCT
        )
        found.update(((city_code, number_of[digest]), deal_no) for digest, deal_no in session.execute(query))
    return found


def _insert_returning_ids(
    session: Session, table: Table, values: list[dict[str, Any]], key: str, keys: list[Any]
) -> list[int]:
    """Insert the rows in one statement (batched VALUES) and return their ids in the order of `keys`."""
    returned = session.execute(insert(table).returning(table.c.id, table.c[key]), values).all()
    id_of = {row_key: row_id for row_id, row_key in returned}
    return [id_of[k] for k in keys]


def _insert_ignoring_conflicts(session: Session, table: Table) -> Any:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()
