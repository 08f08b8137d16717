"""Import stock rental contracts (already signed offline, 网签) as rent-custody deals, in bulk.

Every row is checked exactly as the intake form checks it and mapped the same way
(`contract_import_rows`); bad rows are reported with their row number, field and reason, and the good ones
are imported. Deals enter their workflow by its `imported` transition (created -> awaiting_account: the rent
plan and the account request; no agreement PDF, the contract is signed already). The transition's actions
are carried out in bulk, with the single path's row builders (`contract_import_writer`), and the import
refuses a workflow whose `imported` transition asks for anything else.

Rows are written in batches, each one transaction. A contract is imported once per city and contract number
(`imported_contracts`, unique): re-running a file imports only what is new. The import only queues the
account openings, spread over time at each bank's limits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from sqlalchemy import select

from app.db.models import User
from app.deals.contract_import_report import ImportResult, audit_import
from app.deals.contract_import_rows import EVENT, PRODUCT, RowChecker, ValidRow
from app.deals.contract_import_writer import BatchWriter, imported_keys
from app.domain.contract_import import (
    CITY_COLUMN,
    BadRow,
    Row,
    column_names,
    decode,
    read_header,
    rows,
    split_rows,
)
from app.domain.forms.schema_form import build_form, load_base_schema
from app.platform.errors import ValidationError
from app.platform.runtime import Runtime

__all__ = ["BATCH_SIZE", "CITY_COLUMN", "EVENT", "ImportResult", "form_labels", "import_contracts"]

BATCH_SIZE = 500

Progress = Callable[[int], None]


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
    if on_start is not None:
        on_start(len(records))
    importer = _Importer(rt, user_id, actor, ImportResult(source_name, encoding), batch_size, progress)
    importer.run(rows(columns, records), len(records))
    return importer.result


class _Importer:
    def __init__(
        self, rt: Runtime, user_id: int, actor: str, result: ImportResult, batch_size: int, progress: Progress | None
    ) -> None:
        self.rt, self.actor, self.result = rt, actor, result
        self.batch_size, self.progress = batch_size, progress or (lambda _done: None)
        self.checker = RowChecker(rt, result)
        self.writer = BatchWriter(rt, user_id, actor, result)

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
                valid = self.checker.check(item, imported)
                if valid is not None:
                    batch.append(valid)
                if len(batch) >= self.batch_size:
                    self.writer.write(batch)
                    batch = []
            done = chunk[-1].row_no - 1
            self.progress(done - reported)
            reported = done
        if batch:
            self.writer.write(batch)
        self.progress(records - reported)
        self.result.bad_rows.sort(key=lambda bad: bad.row_no)  # stable: a row's problems stay in form order
        self.result.openings.extend(self.writer.opening_estimates())
        audit_import(self.rt, self.actor, self.result)

    def imported_before(self, chunk: list[Row | BadRow]) -> set[tuple[str, str]]:
        keys = {
            (item.values.get(CITY_COLUMN, ""), item.values.get("lease_contract_no", ""))
            for item in chunk
            if isinstance(item, Row)
        }
        with self.rt.db.uow() as uow:
            return imported_keys(uow.session, keys)


def _chunks(items: Iterable[Row | BadRow], size: int) -> Iterator[list[Row | BadRow]]:
    chunk: list[Row | BadRow] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
