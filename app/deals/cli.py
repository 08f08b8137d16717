"""flask contracts import FILE.csv: stock rental contracts as rent-custody deals.

The deals belong to the agent named by `--agent` (an active user with the agent role): they show in that
agent's deal list as if entered at the intake, and the timeline names that agent and the file's row.
"""

from __future__ import annotations

import csv
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from app.banks.opening_progress import OpeningProgress, opening_progress
from app.deals.contract_import import BATCH_SIZE, ImportResult, form_labels, import_contracts
from app.domain.contract_import import ROW_FIELD, SHANGHAI, duration_text
from app.platform.cli_base import CliGroup, current_runtime
from app.platform.csv_cells import safe_row
from app.platform.runtime import Runtime

contracts_cli = CliGroup("contracts", help="存量合同导入 / stock contracts")
PLAIN_EVERY_S = 2.0
EXIT_OK = 0
EXIT_FAILED = 1  # nothing imported: the file, its header or --agent is wrong, or every row was rejected
EXIT_SOME_REJECTED = 2  # imported, but some rows were rejected (see the report)


class _Progress:
    """A progress bar with rows/s on a terminal; a plain line every couple of seconds otherwise."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.total = 0
        self.done = 0
        self.started = time.monotonic()
        self.last_line = self.started
        self.bar: Any = None

    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.started, 1e-6)

    def start(self, total: int) -> None:
        self.total, self.started = total, time.monotonic()
        if self.tty:
            self.bar = click.progressbar(
                length=total,
                label="导入",
                show_pos=True,
                show_eta=True,
                item_show_func=lambda _item: f"{self.rate():,.0f} 行/秒",
                file=click.get_text_stream("stderr"),
            )
            self.bar.__enter__()

    def advance(self, rows: int) -> None:
        self.done += rows
        if self.bar is not None:
            self.bar.update(rows, self.done)
            return
        now = time.monotonic()
        if now - self.last_line >= PLAIN_EVERY_S or self.done >= self.total:
            self.last_line = now
            click.echo(f"已处理 {self.done}/{self.total} 行（{self.rate():,.0f} 行/秒）", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def write_report(path: Path, result: ImportResult, labels: dict[str, str]) -> None:
    """The bad rows as CSV (UTF-8 with BOM, opens in Excel): row number, field, its title, reason."""
    with path.open("w", encoding="utf-8-sig", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["行号", "字段", "字段名称", "原因", "租赁合同编号"])
        for bad in result.bad_rows:
            title = (
                "整行"
                if bad.field == ROW_FIELD
                else labels.get(bad.field, "城市代码" if bad.field == "city_code" else "")
            )
            writer.writerow(safe_row([bad.row_no, bad.field, title, bad.reason, bad.contract_no]))


def _summary(rt: Runtime, result: ImportResult, elapsed_s: float, report: Path, now: datetime) -> list[str]:
    lines = [
        f"文件：{result.source_name}（{result.encoding}），共 {result.rows} 行",
        f"已导入 {result.imported} 份合同；此前已导入而跳过 {result.already_imported} 份；"
        f"有误 {result.bad_row_count} 行" + (f"（明细见 {report}）" if result.bad_rows else ""),
        f"用时 {elapsed_s:.1f} 秒（{result.rows / max(elapsed_s, 1e-6):,.0f} 行/秒）",
    ]
    for estimate in result.openings:
        limits = estimate.limits
        last = estimate.last_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
        lines.append(
            f"开户排队：{rt.bank(estimate.bank_code).name}（{estimate.bank_code}）共 {estimate.queued} 户待开，"
            f"按银行限速 {limits.per_second} 户/秒（窗口可达 {estimate.pace_per_s:.1f} 户/秒）、"
            f"{limits.per_day} 户/日，"
            f"约需 {duration_text((estimate.last_at - now).total_seconds())}（跨 {estimate.days} 个自然日），"
            f"最后一户最早于 {last} 开立；由 flask worker 按限速开户"
        )
    return lines


class _ImportCommand(click.Command):
    """Usage errors (no such file, missing --agent) exit 1 like any failure that imports nothing, so that
    exit status 2 means only "imported, but some rows were rejected" (click's usage errors exit 2)."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as error:
            error.exit_code = EXIT_FAILED
            raise


def exit_status(result: ImportResult) -> int:
    """0: no row rejected; 2: rows rejected, the others imported (now or by an earlier run); 1: every row
    rejected, nothing imported."""
    if not result.bad_rows:
        return EXIT_OK
    return EXIT_SOME_REJECTED if result.imported or result.already_imported else EXIT_FAILED


def _verdict(result: ImportResult, report: Path, status: int) -> str | None:
    if status == EXIT_SOME_REJECTED:
        return (
            f"部分导入：{result.bad_row_count} 行有误未导入（明细见 {report}），其余合同已导入；"
            f"改正这些行后可重新导入同一文件（已导入的合同会跳过）。退出码 {status}"
        )
    if status == EXIT_FAILED:
        return f"导入失败：{result.bad_row_count} 行全部有误，未导入任何合同（明细见 {report}）。退出码 {status}"
    return None


@contracts_cli.command("import", cls=_ImportCommand)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--agent", "agent", required=True, help="the agent (username) the imported deals belong to")
@click.option(
    "--report",
    "report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="bad-row report CSV (default: FILE.errors.csv next to FILE)",
)
@click.option("--batch-size", default=BATCH_SIZE, show_default=True, type=click.IntRange(1, 5000))
def contracts_import(file: Path, agent: str, report: Path | None, batch_size: int) -> None:
    """导入存量租赁合同（CSV，UTF-8 或 GBK，首行为表头），生成住房租金托管存管单。

    Import stock rental contracts (CSV, UTF-8 or GBK, header row) as rent-custody deals.

    Columns: city_code (城市代码) and the rent-custody form's fields by name or Chinese title (tenant_name /
    承租人姓名, monthly_rent_fen / 月租金 in yuan, lease_contract_no / 租赁合同编号 …); custody_bank is
    optional. Bad rows are reported, good rows imported; a contract already imported is skipped.

    \b
    Exit status:
      0  every row imported (or imported by an earlier run)
      2  some rows rejected (listed in the report), the others imported
      1  nothing imported: the file cannot be read, its encoding or header is wrong, --agent is not an
         active agent, or every row was rejected"""
    rt = current_runtime()
    report = report or file.with_name(f"{file.stem}.errors.csv")
    progress = _Progress(sys.stderr.isatty())
    started, now = time.monotonic(), rt.clock()
    try:
        result = import_contracts(
            rt,
            agent,
            file.name,
            file.read_bytes(),
            batch_size=batch_size,
            progress=progress.advance,
            on_start=progress.start,
        )
    finally:
        progress.close()
    write_report(report, result, form_labels(rt))
    for line in _summary(rt, result, time.monotonic() - started, report, now):
        click.echo(line)
    status = exit_status(result)
    verdict = _verdict(result, report, status)
    if verdict is not None:
        click.echo(verdict)
    sys.exit(status)


@contracts_cli.command("openings")
@click.option("--watch", "watch_s", type=click.FloatRange(min=1), help="repeat every N seconds until none is queued")
def contracts_openings(watch_s: float | None) -> None:
    """导入合同的开户进度：各银行已开户/导入总数、排队数、近一分钟速率、预计开完时间（北京时间）。

    Progress of the imported contracts' account openings per bank: opened/imported, queued, the last minute's
    pace and when the last queued opening will go (Asia/Shanghai)."""
    rt = current_runtime()
    while True:
        rows = opening_progress(rt)
        for line in progress_lines(rows):
            click.echo(line)
        if watch_s is None or not any(row.queued for row in rows):
            return
        time.sleep(watch_s)


def progress_lines(rows: list[OpeningProgress]) -> list[str]:
    if not rows:
        return ["没有导入合同的开户，也没有排队待开的账户"]
    lines = []
    for row in rows:
        last = None if row.last_at is None else row.last_at.astimezone(SHANGHAI)
        finish = "已无排队" if last is None else f"预计 {last:%Y-%m-%d %H:%M:%S} 开完"
        lines.append(
            f"{row.bank_name}（{row.bank_code}）：已开户 {row.opened}/{row.imported}（{row.share:.1%}），"
            f"排队 {row.queued} 户，近一分钟 {row.recent_per_s:.1f} 户/秒（窗口可达 {row.pace_per_s:.1f} 户/秒），"
            f"{finish}（北京时间）"
        )
    return lines
