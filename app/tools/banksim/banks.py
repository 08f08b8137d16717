"""The banks the simulator plays: every configured bank (`bank_configs/`, `app.banks.registry.configured_banks`).

A bank's facts - code, name, virtual-account number format, account-opening limits with its own error codes,
daily statement layout - are its config file's and are not repeated here; the simulator adds only its own
behaviour (random account numbers here; keys, faults, delays and limit overrides elsewhere).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from app.banks.registry import configured_banks
from app.domain.banks import AccountFormat, KnownBank, OpeningLimits, StatementLayout


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


SIMULATED_BANKS: dict[str, SimulatedBank] = {code: SimulatedBank(bank) for code, bank in configured_banks().items()}
