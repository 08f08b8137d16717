"""Banks by configuration (issue 17): every bank is one reviewed file in bank_configs/ (schema
app/schemas/bank.schema.json), checked by app.domain.banks.banks_from_documents; the shipped banks carry exactly
the facts the Python registry had, a broken file is refused in Chinese, and a bank that speaks protocol v1 (中国
民生银行 cmbc) is added by its file alone."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

import app
from app.banks.registry import BANK_CONFIGS_DIR, configured_banks, load_banks
from app.domain.banks import BankConfigInvalid, KnownBank, bank_from_document, banks_from_documents
from app.platform.config import Config
from app.tools.banksim.banks import SIMULATED_BANKS

# sha256 of the facts of ceb, icbc, abc, ccb, pab and boc as app/domain/banks.py stated them in Python (commit
# d392528), serialised by _facts: the files carry the same facts.
PYTHON_REGISTRY_FACTS = "907da386dc3ddf9485a5159ff302fcbc0399eeb8574931ba147a37e4551c658e"


def _facts(bank: KnownBank) -> dict[str, Any]:
    f, limits, s = bank.account_format, bank.opening_limits, bank.statement
    refusals = (limits.per_second_error, limits.per_day_error)
    return {
        "code": bank.code,
        "name": bank.name,
        "short_name": bank.short_name,
        "account": [f.prefix, f.random_digits, f.luhn],
        "limits": [limits.per_second, limits.per_day, *(text for r in refusals for text in (r.code, r.message))],
        "cut_off": bank.cut_off.isoformat(),
        "statement": [
            [list(column) for column in s.columns],
            s.encoding,
            s.amount_unit,
            s.summaries,
            s.directions,
            s.date_format,
            s.time_format,
            s.datetime_format,
            s.closing_label,
            s.bank_name,
        ],
    }


def _document(code: str = "ceb") -> dict[str, Any]:
    return json.loads((BANK_CONFIGS_DIR / f"{code}.json").read_text(encoding="utf-8"))


def _refusal(doc: Any) -> list[tuple[str, str]]:
    with pytest.raises(BankConfigInvalid) as caught:
        bank_from_document(doc, "x.json")
    assert caught.value.code == "BANK_CONFIG_INVALID" and "银行配置" in caught.value.message
    return [(problem.pointer, problem.message) for problem in caught.value.problems]


def test_the_shipped_banks_load_from_their_files_with_the_facts_the_python_registry_had() -> None:
    banks = configured_banks()
    assert sorted(banks) == ["abc", "boc", "ccb", "ceb", "cmbc", "icbc", "pab"]
    old = [_facts(banks[code]) for code in ("ceb", "icbc", "abc", "ccb", "pab", "boc")]
    serialised = json.dumps(old, ensure_ascii=False, sort_keys=True).encode()
    assert hashlib.sha256(serialised).hexdigest() == PYTHON_REGISTRY_FACTS
    for code, bank in banks.items():
        assert (bank.protocol, bank.base_url) == ("v1", f"http://127.0.0.1:5001/{code}")
        account = bank.account_format
        assert account.pattern == f"^{account.prefix}[0-9]{{{account.length - len(account.prefix)}}}$"
    banks = configured_banks()
    assert banks["cmbc"].cut_off.isoformat() == "17:00:00" and banks["ceb"].cut_off.isoformat() == "16:30:00"


def test_the_account_number_pattern_runs_on_the_linear_engine_and_must_fit_the_assigned_numbers() -> None:
    doc = _document()
    doc["account_number"]["pattern"] = "^(?=6226)[0-9]{16}$"  # lookahead: the linear engine has none
    ((at, message),) = _refusal(doc)
    assert at == "/account_number/pattern" and message.startswith("账号格式正则无效")
    doc["account_number"]["pattern"] = "^6226[0-9]{11}$"  # one digit short of what the bank assigns
    assert _refusal(doc) == [
        ("/account_number/pattern", "账号格式正则与前缀、位数不符：银行分配的账号 6226000000000000 不匹配")
    ]
    doc["account_number"]["pattern"] = "6226[0-9]{12}"  # unanchored: still a whole-number match
    ceb = bank_from_document(doc, "ceb.json").account_format
    assert ceb.matches("6226000000000007") and not ceb.matches("x6226000000000007")


def test_a_broken_statement_layout_or_an_unknown_protocol_is_refused_in_chinese() -> None:
    doc = _document()
    doc["protocol"] = "v2"
    doc["statement"]["columns"].append({"header": "备注", "field": "remark"})
    doc["statement"]["date_format"] = "%Y"
    doc["statement"]["encoding"] = "ebcdic-cn"
    (protocol, (at, layout)) = _refusal(doc)
    assert protocol == ("/protocol", "不支持的银行接口协议 v2（支持：v1）")
    assert at == "/statement" and layout.startswith("对账单格式：")
    assert "未知字段 remark" in layout and "未知的字符编码 ebcdic-cn" in layout
    assert "date_format %Y 无法写出并读回完整的日期" in layout
    no_direction = _document()
    del no_direction["statement"]["directions"]
    ((_, message),) = _refusal(no_direction)
    assert "借贷标志列" in message
    schema = _document()
    schema["opening_limits"]["per_second"] = 0
    del schema["cut_off"]
    assert sorted(_refusal(schema)) == [
        ("/", "不符合银行配置结构定义"),
        ("/opening_limits/per_second", "不符合银行配置结构定义"),
    ]


def test_a_folder_of_files_is_refused_whole_with_every_problem(tmp_path: Path) -> None:
    for code in ("ceb", "pab"):
        (tmp_path / f"{code}.json").write_text(json.dumps(_document(code), ensure_ascii=False), encoding="utf-8")
    assert list(load_banks(tmp_path)) == ["ceb", "pab"]
    (tmp_path / "cmb.json").write_text(json.dumps(_document("pab"), ensure_ascii=False), encoding="utf-8")
    (tmp_path / "zz.json").write_text("{", encoding="utf-8")
    with pytest.raises(BankConfigInvalid) as caught:
        load_banks(tmp_path)
    assert [(p.file, p.pointer, p.message) for p in caught.value.problems] == [
        ("cmb.json", "/code", "文件名 cmb.json 与银行代码 pab 不符"),
        ("zz.json", "/", "不是合法的 UTF-8 JSON 文件"),
        ("pab.json", "/code", "银行代码 pab 重复"),
    ]
    with pytest.raises(BankConfigInvalid, match="1 处错误"):
        banks_from_documents([("a.json", _document()), ("b.json", _document())])


def test_the_new_bank_exists_only_as_its_file_yet_the_platform_and_the_simulator_know_it(tmp_path: Path) -> None:
    mentions = [path for path in Path(app.__file__).parent.rglob("*.py") if "cmbc" in path.read_text("utf-8")]
    assert mentions == [], "no Python names the bank"
    cmbc = configured_banks()["cmbc"]
    assert (cmbc.name, cmbc.short_name, cmbc.statement.bank_name) == ("中国民生银行", "民生", "中国民生银行")
    assert SIMULATED_BANKS["cmbc"].bank is cmbc
    assert SIMULATED_BANKS["cmbc"].account_format.matches(SIMULATED_BANKS["cmbc"].new_account_no())
    endpoint = Config(instance_path=tmp_path, database_url="sqlite://", keys_dir=tmp_path, secret_key="x").banks["cmbc"]
    assert (endpoint.name, endpoint.base_url, endpoint.open_per_second, endpoint.open_per_day) == (
        "中国民生银行",
        "http://127.0.0.1:5001/cmbc",
        6,
        4000,
    )
