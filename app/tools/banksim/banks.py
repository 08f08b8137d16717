"""The banks a simulator plays: by default every configured bank (`bank_configs/`,
`app.banks.registry.configured_banks`); a simulator may be given others (`simulated_banks`): the banks a runtime
serves as published - a bank added in the publishing flow, or a bank's draft being simulated - or bank files
(`bank-sim serve --bank-config`).

A bank's facts - code, name, virtual-account number format, account-opening limits with its own error codes,
daily statement layout - are its config file's and are not repeated here; the simulator adds only its own
behaviour (random account numbers here; keys, faults, delays and limit overrides elsewhere).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from app.banks.registry import configured_banks
from app.domain.banks import (
    AccountFormat,
    BankConfigInvalid,
    KnownBank,
    OpeningLimits,
    StatementLayout,
    bank_from_document,
)
from app.domain.problems import Problem


@dataclass(frozen=True)
class SimulatedBank:
    bank: KnownBank

    @property
    def code(self) -> str:
        return self.bank.code

    @property
    def name(self) -> str:
        return self.bank.name

    @property
    def account_format(self) -> AccountFormat:
        return self.bank.account_format

    @property
    def limits(self) -> OpeningLimits:
        return self.bank.opening_limits

    @property
    def statement(self) -> StatementLayout:
        return self.bank.statement

    def new_account_no(self) -> str:
        """A random number in the bank's format (the caller makes sure it is not taken yet)."""
        return self.account_format.account_no(secrets.randbelow(10**self.account_format.random_digits))


def simulated_banks(banks: Mapping[str, KnownBank] | None = None) -> dict[str, SimulatedBank]:
    """The simulator's banks: `banks` (a runtime's `known_banks`, read once), else the repository's, by code."""
    chosen = configured_banks() if banks is None else dict(banks.items())
    return {code: SimulatedBank(bank) for code, bank in sorted(chosen.items())}


def banks_from_files(paths: Iterable[Path]) -> dict[str, KnownBank]:
    """Each bank file (a document as `bank_configs/` holds or the publishing flow stores), checked as the
    platform checks it; BankConfigInvalid lists every problem."""
    found: dict[str, KnownBank] = {}
    problems: list[Problem] = []
    for path in paths:
        try:
            found_bank = bank_from_document(json.loads(Path(path).read_text(encoding="utf-8")), Path(path).name)
        except (UnicodeDecodeError, ValueError) as error:
            problems.append(Problem(Path(path).name, "/", "不是合法的 UTF-8 JSON 文件", str(error)))
        except BankConfigInvalid as invalid:
            problems += invalid.problems
        else:
            found[found_bank.code] = found_bank
    if problems:
        raise BankConfigInvalid(problems)
    return found


SIMULATED_BANKS: dict[str, SimulatedBank] = simulated_banks()
"""The repository's banks, as every simulator plays them unless given others."""
