"""Import stock rental contracts (already signed offline, 网签) as rent-custody deals, in bulk.

Every row is checked exactly as the intake form checks it (the city's form, built once per city) and mapped
the same way (`deal_fields`); bad rows are reported with their row number, field and reason, and the good
ones are imported. Deals enter their workflow by its `imported` transition (created -> awaiting_account:
the rent plan and the account request; no agreement PDF, the contract is signed already). The transition's
actions are carried out in bulk here, and the import refuses a workflow whose `imported` transition asks for
anything else.

Rows are written in batches, each one transaction of a few set-based INSERTs (deals, their timeline, their
custody ledger accounts, account requests, opening jobs, the import record) with deal numbers allocated
once per batch; every row is built by the builder the one-at-a-time path uses (`deal_row`, `blind_indexes`,
`creation_row`, `transition_row`, `virtual_account_request`, `account_opening`, `job_row`, `account_row`).
A contract is imported once per city and contract number (`imported_contracts`, unique): re-running a file
imports only what is new.

The import only queues the account openings. Their jobs are spread over time at the bank's limits (per
second, per day) so that workers do not spin deferring 100,000 due jobs; the token bucket
(`app/db/rate_limits.py`) remains what guarantees no opening ever goes faster than the bank allows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.banks.settings import opening_limits
from app.db.models import (
    BankRateLimit,
    Deal,
    DealEvent,
    ImportedContract,
    Job,
    LedgerAccount,
    User,
    VirtualAccount,
)
from app.db.pii import blind_indexes
from app.deals.actions import account_opening, virtual_account_request
from app.deals.pinning import pin
from app.deals.service import DealOrigin, advisory_lock, allocate_deal_numbers, creation_row, custody_bank, deal_row
from app.deals.workflow import transition_row
from app.domain import ledger
from app.domain.cities import CityConfig, ProductConfig, ResolvedCity
from app.domain.contract_import import (
    BANK_COLUMN,
    CITY_COLUMN,
    ROW_FIELD,
    BadRow,
    OpeningEstimate,
    Row,
    column_names,
    decode,
    opening_slot,
    read_header,
    rows,
    split_rows,
)
from app.domain.forms.products import DealFields, deal_fields
from app.domain.forms.schema_form import SchemaForm, build_form, load_base_schema
from app.domain.rate_limit import Limits
from app.ledger.repo import account_row
from app.platform.errors import ConfigError, CunguanError, ValidationError
from app.platform.runtime import Runtime
from app.queue.jobs import job_row
from app.state_machine import building_blocks as blocks
from app.state_machine.definition import Transition, WorkflowDefinition
from app.state_machine.parameters import resolve

PRODUCT = "rent_custody"
EVENT = "imported"
BATCH_SIZE = 500
SHANGHAI = ZoneInfo("Asia/Shanghai")
BULK_ACTIONS = frozenset({"plan_rent_custody", "request_virtual_account"})  # what _write_batch carries out
IMPORT_LOCK = "contract_import"  # one importer writes a batch at a time (PostgreSQL advisory lock)
IMPORTED_LABEL = "新建存管单（存量合同导入）"

Progress = Callable[[int], None]


@dataclass(frozen=True)
class CityImport:
    """What a city's rows need, built once per city: its form, workflow parameters and transition."""

    code: str
    resolved: ResolvedCity
    city: CityConfig
    product: ProductConfig
    form: SchemaForm
    params: dict[str, Any]
    definition: WorkflowDefinition
    transition: Transition


@dataclass(frozen=True)
class ValidRow:
    row_no: int
    city: CityImport
    contract_no: str
    bank_code: str
    fields: DealFields  # the deal's columns and facts, the rent plan made


@dataclass
class ImportResult:
    source_name: str
    encoding: str = ""
    rows: int = 0  # data rows read (blank lines not counted)
    imported: int = 0
    already_imported: int = 0  # imported by an earlier run: skipped
    bad_rows: list[BadRow] = field(default_factory=list)
    openings: list[OpeningEstimate] = field(default_factory=list)

    @property
    def bad_row_count(self) -> int:
        return len({bad.row_no for bad in self.bad_rows})


@dataclass
class _BankQueue:
    """The opening schedule of one bank during this import: the next position in its queue."""

    limits: Limits
    start: datetime
    opened_today: int
    position: int

    def next_slot(self) -> datetime:
        slot = opening_slot(self.limits, self.start, self.opened_today, self.position)
        self.position += 1
        return slot


def importing_actor(rt: Runtime, username: str) -> tuple[int, str]:
    """(user id, actor label) of the agent the imported deals belong to (they appear in the agent's list)."""
    with rt.db.uow() as uow:
        user = uow.session.scalar(select(User).where(User.username == username))
        if user is None or not user.active or user.role != "agent":
            raise ValidationError(
                "导入需指定一个有效的经纪人账号（--agent）", code="IMPORT_AGENT_INVALID", details={"agent": username}
            )
        return user.id, f"user:{user.username}"


def form_labels(rt: Runtime) -> dict[str, str]:
    """Field name -> Chinese title of the rent-custody form as the virtual city defines it (the header's
    accepted names; a city's own extra fields are accepted by name)."""
    product = rt.cities.load("_virtual").product(PRODUCT)
    form = build_form(PRODUCT, load_base_schema(PRODUCT), product.form)
    return {f.name: f.label for f in form.fields}


def import_contracts(
    rt: Runtime,
    agent_username: str,
    source_name: str,
    data: bytes,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
    on_start: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import the file's contracts; ImportFileError (nothing imported) when its encoding or header is wrong.
    `on_start` hears the number of data records, `progress` the records done since its last call."""
    assert batch_size > 0
    user_id, actor = importing_actor(rt, agent_username)
    text, encoding = decode(data)
    header, records = split_rows(text)
    labels = form_labels(rt)
    required = [CITY_COLUMN, *load_base_schema(PRODUCT)["required"]]
    columns = read_header(header, column_names(labels), required)
    record_list = list(records)
    if on_start is not None:
        on_start(len(record_list))
    importer = _Importer(rt, user_id, actor, ImportResult(source_name, encoding), batch_size, progress)
    importer.run(rows(columns, record_list), len(record_list))
    return importer.result


class _Importer:
    def __init__(
        self, rt: Runtime, user_id: int, actor: str, result: ImportResult, batch_size: int, progress: Progress | None
    ) -> None:
        self.rt, self.user_id, self.actor, self.result = rt, user_id, actor, result
        self.batch_size, self.progress = batch_size, progress or (lambda _done: None)
        self.cities: dict[str, CityImport | str] = {}  # a city's import context, or why it cannot import
        self.seen: dict[tuple[str, str], int] = {}  # (city, contract no) -> the row that has it
        self.queues: dict[str, _BankQueue] = {}

    def run(self, items: Iterable[Row | BadRow], records: int) -> None:
        """Read the rows a chunk at a time: the chunk's contracts imported before are looked up at once (a
        re-run skips them without checking them again), the rest checked, the good ones written."""
        batch: list[ValidRow] = []
        reported = 0
        for chunk in _chunks(items, self.batch_size):
            imported = self.imported_before(chunk)
            for item in chunk:
                self.result.rows += 1
                if isinstance(item, BadRow):
                    self.result.bad_rows.append(item)
                    continue
                valid = self.check(item, imported)
                if valid is not None:
                    batch.append(valid)
                if len(batch) >= self.batch_size:
                    self.write(batch)
                    batch = []
            done = chunk[-1].row_no - 1
            self.progress(done - reported)
            reported = done
        if batch:
            self.write(batch)
        self.progress(records - reported)
        self.result.bad_rows.sort(key=lambda bad: bad.row_no)  # stable: a row's problems stay in form order
        self.finish()

    def imported_before(self, chunk: list[Row | BadRow]) -> set[tuple[str, str]]:
        keys = {
            (item.values.get(CITY_COLUMN, ""), item.values.get("lease_contract_no", ""))
            for item in chunk
            if isinstance(item, Row)
        }
        with self.rt.db.uow() as uow:
            return _imported_keys(uow.session, keys)

    # --- checking a row -------------------------------------------------------------------------------

    def city(self, code: str) -> CityImport | str:
        if code not in self.cities:
            try:
                self.cities[code] = self._load_city(code)
            except CunguanError as error:
                self.cities[code] = f"城市代码 {code} 不可用：{error.message}"
        return self.cities[code]

    def _load_city(self, code: str) -> CityImport:
        resolved, city = self.rt.cities.get_resolved(code)
        product = city.product(PRODUCT)
        definition = self.rt.workflow(product.workflow_id, product.workflow_version)
        return CityImport(
            code=code,
            resolved=resolved,
            city=city,
            product=product,
            form=build_form(PRODUCT, load_base_schema(PRODUCT), product.form),
            params=resolve(definition.parameters, product.overrides()),
            definition=definition,
            transition=import_transition(definition),
        )

    def bad(self, row: Row, field_name: str, reason: str) -> None:
        self.result.bad_rows.append(BadRow(row.row_no, field_name, reason, row.values.get("lease_contract_no", "")))

    def check(self, row: Row, imported: set[tuple[str, str]]) -> ValidRow | None:
        """The row ready to write, or None after reporting what is wrong with it or when its contract was
        imported before (`imported`: city and contract number)."""
        code = row.values.get(CITY_COLUMN, "")
        city = self.city(code) if code else "请填写城市代码"
        if isinstance(city, str):
            self.bad(row, CITY_COLUMN, city)
            return None
        contract_no = row.values.get("lease_contract_no", "")
        if contract_no:
            first = self.seen.setdefault((code, contract_no), row.row_no)
            if first != row.row_no:
                self.bad(row, "lease_contract_no", f"租赁合同编号与第 {first} 行重复")
                return None
        if (code, contract_no) in imported:
            self.result.already_imported += 1
            return None
        try:
            clean = city.form.validate(row.values)
            fields = deal_fields(PRODUCT, clean, city.params)
            bank_code = custody_bank(city.product, row.values.get(BANK_COLUMN, ""))
        except ValidationError as error:
            where = BANK_COLUMN if error.code == "BANK_NOT_OFFERED" else ROW_FIELD
            problems = error.details if error.code == "FORM_INVALID" else {where: error.message}
            for name, message in problems.items():
                self.bad(row, name, str(message))
            return None
        if bank_code not in self.rt.banks:
            self.bad(row, BANK_COLUMN, f"存管银行 {bank_code} 尚未接入本平台")
            return None
        if not clean.get("lease_contract_no"):  # the import's key: a city form without it cannot import
            self.bad(row, "lease_contract_no", "请填写租赁合同编号")
            return None
        if fields.columns["custody_amount_fen"] > fields.columns["price_fen"]:
            self.bad(row, "months_per_installment", "付款周期不能长于租期")
            return None
        case = blocks.CaseContext(city.params, dict(fields.facts))
        blocks.plan_rent_custody(case)  # the transition's plan, as the workflow action computes it
        planned = DealFields(columns=fields.columns, facts=case.case)
        return ValidRow(row.row_no, city, clean["lease_contract_no"], bank_code, planned)

    # --- writing a batch ------------------------------------------------------------------------------

    def write(self, batch: list[ValidRow]) -> None:
        with self.rt.db.uow() as uow:
            session = uow.session
            now = self.rt.clock()
            advisory_lock(session, IMPORT_LOCK)
            batch = self.new_only(session, batch)
            if batch:
                numbers = allocate_deal_numbers(session, now, PRODUCT, [row.city.code for row in batch])
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
        imported = _imported_keys(session, set(keys))  # by another import since the chunk was read
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
            origin = DealOrigin(city.code, city.city, city.product, city.definition, row.bank_code, self.user_id)
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
            job_row(*account_opening(account_id), now, max(0.0, (slot - now).total_seconds()))
            for account_id, slot in zip(account_ids, slots, strict=True)
        ]
        session.execute(insert(Job.__table__), jobs)
        session.execute(insert(ImportedContract.__table__), records)

    def import_record(self, row: ValidRow, deal_id: int, now: datetime) -> dict[str, Any]:
        """The row that makes this contract imported, once per city and contract number (a re-run skips it)."""
        return {
            "city_code": row.city.code,
            "contract_no": row.contract_no,
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
            bucket = session.get(BankRateLimit, bank_code)
            today = now.astimezone(SHANGHAI).date()
            opened_today = bucket.day_count if bucket is not None and bucket.day == today else 0
            waiting = session.scalar(
                select(func.count())
                .select_from(VirtualAccount)
                .where(VirtualAccount.bank_code == bank_code, VirtualAccount.status == "requested")
            )
            self.queues[bank_code] = _BankQueue(limits, now, opened_today, waiting or 0)
        return self.queues[bank_code]

    def finish(self) -> None:
        """The opening estimate per bank, and one audit entry for the whole import."""
        for bank_code, queue in sorted(self.queues.items()):
            last = opening_slot(queue.limits, queue.start, queue.opened_today, max(0, queue.position - 1))
            self.result.openings.append(OpeningEstimate(bank_code, queue.position, queue.limits, last))
        with self.rt.db.uow() as uow:
            audit.append(
                uow.session,
                at=self.rt.clock(),
                actor=self.actor,
                action="contracts.import",
                subject=f"file:{self.result.source_name}",
                detail={
                    "rows": self.result.rows,
                    "imported": self.result.imported,
                    "already_imported": self.result.already_imported,
                    "bad_rows": self.result.bad_row_count,
                },
            )
            uow.commit()


def import_transition(definition: WorkflowDefinition) -> Transition:
    """The workflow's `imported` transition from its initial state, if it asks only for what the bulk import
    carries out (no guard; rent plan and account request)."""
    found = definition.transitions_from(definition.initial, EVENT)
    if len(found) != 1 or found[0].guard is not None or not set(found[0].actions) <= BULK_ACTIONS:
        raise ConfigError(
            "工作流没有可批量执行的存量导入流转（created --imported-->，仅限核定租金计划与申请开户）",
            code="IMPORT_TRANSITION_MISSING",
            details={"workflow": definition.id, "version": definition.version},
        )
    if "request_virtual_account" not in found[0].actions:
        raise ConfigError("存量导入流转须申请开立托管账户", code="IMPORT_TRANSITION_MISSING")
    return found[0]


def _chunks(items: Iterable[Row | BadRow], size: int) -> Iterator[list[Row | BadRow]]:
    chunk: list[Row | BadRow] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _by_city(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for city_code, contract_no in sorted(set(keys)):
        grouped.setdefault(city_code, []).append(contract_no)
    return grouped


def _imported_keys(session: Session, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (city code, contract number) were imported already: one index lookup per city
    (`city_code = … AND contract_no IN (…)`; a row-value IN list is not an index scan on PostgreSQL)."""
    found: set[tuple[str, str]] = set()
    for city_code, numbers in _by_city(keys).items():
        query = select(ImportedContract.contract_no).where(
            ImportedContract.city_code == city_code, ImportedContract.contract_no.in_(numbers)
        )
        found.update((city_code, contract_no) for contract_no in session.scalars(query))
    return found


def _deals_of_contracts(session: Session, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(city code, contract number) -> the number of a rent-custody deal already made for that contract."""
    found: dict[tuple[str, str], str] = {}
    for city_code, numbers in _by_city(keys).items():
        query = select(Deal.certificate_no, Deal.deal_no).where(
            Deal.certificate_no.in_(numbers), Deal.city_code == city_code, Deal.product == PRODUCT
        )
        found.update(((city_code, contract_no), deal_no) for contract_no, deal_no in session.execute(query))
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
