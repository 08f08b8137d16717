"""The custodian banks the platform knows: the one registry city configs are checked against."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownBank:
    code: str
    name: str
    short_name: str


KNOWN_BANKS: dict[str, KnownBank] = {
    bank.code: bank
    for bank in (
        KnownBank("ceb", "中国光大银行", "光大"),
        KnownBank("icbc", "中国工商银行", "工行"),
        KnownBank("abc", "中国农业银行", "农行"),
        KnownBank("ccb", "中国建设银行", "建行"),
        KnownBank("pab", "平安银行", "平安"),
        KnownBank("boc", "中国银行", "中行"),
    )
}
