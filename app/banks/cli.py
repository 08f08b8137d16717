"""flask bank validate: check the bank config files (bank_configs/, or another folder) before they are used."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from app.banks.registry import BANK_CONFIGS_DIR, load_banks
from app.domain.banks import BankConfigInvalid
from app.platform.cli_base import CliGroup

bank_cli = CliGroup("bank", help="存管银行配置 / custodian bank configs")


@bank_cli.command("validate")
@click.option(
    "--dir",
    "folder",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=BANK_CONFIGS_DIR,
    help="银行配置目录（默认 bank_configs/）",
)
def bank_validate(folder: Path) -> None:
    """检查目录中每个银行配置文件（结构、协议、账号格式、对账单格式）；列出每家银行，或列出全部问题并以退出码 1 结束。

    Check every bank file of the folder (schema, protocol, account-number pattern, statement layout); print
    each bank, or every problem and exit 1."""
    try:
        banks = load_banks(folder)
    except BankConfigInvalid as error:
        click.echo(f"✗ {error.message}", err=True)
        for problem in error.problems:
            click.echo(f"  ✗ {problem}", err=True)
        sys.exit(1)
    for bank in banks.values():
        limits = bank.opening_limits
        click.echo(
            f"✓ {bank.code} {bank.name}（协议 {bank.protocol}，日切 {bank.cut_off:%H:%M}，"
            f"开户限额每秒 {limits.per_second} 笔、每日 {limits.per_day} 笔）"
        )
