"""Checking the rows of a contract file: each row exactly as the intake form checks it (the city's form, built
once per city) and mapped the same way (`deal_fields`), then planned as the `imported` transition's
`plan_rent_custody` action plans it. A bad row is reported with its row number, field and reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.deals.contract_import_report import ImportResult
from app.deals.service import custody_bank
from app.domain.cities import CityConfig, ProductConfig, ResolvedCity
from app.domain.contract_import import BANK_COLUMN, CITY_COLUMN, ROW_FIELD, BadRow, Row
from app.domain.custody_limits import CUSTODY_LIMIT_CODES, custody_limit_error
from app.domain.forms.products import DealFields, deal_fields
from app.domain.forms.schema_form import SchemaForm, build_form, load_base_schema
from app.platform.errors import ConfigError, CunguanError, ValidationError
from app.platform.runtime import Runtime
from app.state_machine import building_blocks as blocks
from app.state_machine.definition import Transition, WorkflowDefinition
from app.state_machine.parameters import resolve

PRODUCT = "rent_custody"
EVENT = "imported"
FIELD_ERRORS = ("FORM_INVALID", *CUSTODY_LIMIT_CODES)  # errors whose details name the row's fields
BULK_ACTIONS = frozenset({"plan_rent_custody", "request_virtual_account"})  # what the batch writer carries out


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
    """A row ready to write: its deal's columns and facts (the rent plan made) and its custody bank."""

    row_no: int
    city: CityImport
    contract_no: str
    bank_code: str
    fields: DealFields


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


class RowChecker:
    """Checks rows one by one, reporting bad ones in `result`; remembers each city's import context (or why
    the city cannot import) and which row holds each contract number (a second one is a duplicate)."""

    def __init__(self, rt: Runtime, result: ImportResult) -> None:
        self.rt, self.result = rt, result
        self.cities: dict[str, CityImport | str] = {}  # a city's import context, or why it cannot import
        self.seen: dict[tuple[str, str], int] = {}  # (city, contract no) -> the row that has it

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
            fields = deal_fields(PRODUCT, clean, city.params, city.product.form)
            refused = custody_limit_error(PRODUCT, city.product.custody, fields.columns["custody_amount_fen"])
            if refused is not None:
                raise refused
            bank_code = custody_bank(city.product, row.values.get(BANK_COLUMN, ""))
        except ValidationError as error:
            where = BANK_COLUMN if error.code == "BANK_NOT_OFFERED" else ROW_FIELD
            problems = error.details if error.code in FIELD_ERRORS else {where: error.message}
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
