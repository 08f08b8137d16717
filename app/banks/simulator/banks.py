"""The banks the simulator plays: data only, so adding a bank is one more entry."""

from __future__ import annotations

import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class SimulatedBank:
    code: str
    name: str
    account_prefix: str
    account_digits: int  # digits after the prefix

    def new_account_no(self) -> str:
        return self.account_prefix + str(secrets.randbelow(10**self.account_digits)).zfill(self.account_digits)


SIMULATED_BANKS: dict[str, SimulatedBank] = {
    bank.code: bank
    for bank in (SimulatedBank(code="ceb", name="中国光大银行", account_prefix="6226", account_digits=12),)
}
