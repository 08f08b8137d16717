"""The banks the platform knows, read from their config files (`bank_configs/<code>.json`, one bank each; the
repository's files are the seed) and checked by `app.domain.banks.banks_from_documents`. A bank that speaks
protocol v1 is added by adding its file: the platform's bank endpoints, the city checks, reconciliation and the
bank simulator all read `configured_banks()`."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from app.domain.banks import BankConfigInvalid, KnownBank, banks_from_documents
from app.domain.problems import Problem

BANK_CONFIGS_DIR = Path(__file__).resolve().parents[2] / "bank_configs"


def bank_documents(folder: Path) -> tuple[list[tuple[str, Any]], list[Problem]]:
    """(file name, parsed document) of every `*.json` in `folder`, by name, and the files that cannot be one:
    not JSON, or named otherwise than the code they declare."""
    documents, problems = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            problems.append(Problem(path.name, "/", "不是合法的 UTF-8 JSON 文件", str(error)))
            continue
        code = doc.get("code") if isinstance(doc, dict) else None
        if isinstance(code, str) and code != path.stem:
            zh = f"文件名 {path.name} 与银行代码 {code} 不符"
            problems.append(Problem(path.name, "/code", zh, "the file is not named after the bank's code"))
        documents.append((path.name, doc))
    return documents, problems


def load_banks(folder: Path) -> dict[str, KnownBank]:
    """Every bank of the folder's files; BankConfigInvalid lists every problem of every file."""
    documents, problems = bank_documents(folder)
    try:
        banks = banks_from_documents(documents)
    except BankConfigInvalid as error:
        problems += error.problems
    if problems:
        raise BankConfigInvalid(problems)
    return banks


@cache
def configured_banks() -> dict[str, KnownBank]:
    """The repository's banks (`bank_configs/`), read once per process."""
    return load_banks(BANK_CONFIGS_DIR)
