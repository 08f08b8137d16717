"""Statement parsing per bank layout: fen from yuan without floats, Shanghai times to UTC, GBK, and every
row that does not fit reported with its row number - never dropped."""

from __future__ import annotations

from datetime import UTC, date, datetime

from app.bank_inbox.reconciliation_exceptions import OpenCounts, verdict
from app.banks.registry import configured_banks
from app.domain.statements import parse_statement

DAY = date(2026, 11, 20)
CEB_HEADER = "交易日期,交易时间,交易流水号,虚户账号,借贷标志,交易金额,对方户名,对方账号,业务编号,摘要"
ICBC_HEADER = "账号,交易时间,借方发生额,贷方发生额,对方单位名称,对方账号,凭证号,客户流水号,用途"
PAB_HEADER = "TranDate,TranTime,HostSeqNo,SubAcctNo,DcFlag,TranAmt,OppAcctNo,OppAcctName,ThirdSeqNo,Remark"


def _file(*rows: str, encoding: str = "utf-8") -> bytes:
    return "".join(row + "\r\n" for row in rows).encode(encoding)


def test_ceb_yuan_becomes_fen_and_shanghai_time_becomes_utc() -> None:
    content = _file(
        CEB_HEADER,
        "2026-11-20,09:05:07,CEBI1,6226012345678901,贷,1234567.89,张三,6222020200112233445,,来账",
        '2026-11-20,23:59:59,CEBP2,6226012345678901,借,0.10,"李四,王五",6222020200998877665,PO-1,付款',
    )
    parsed = parse_statement(configured_banks()["ceb"].statement, content, DAY)
    assert parsed.problems == ()
    credit, debit = parsed.lines
    assert (credit.row, credit.direction, credit.amount_fen, credit.payout_id) == (2, "credit", 123456789, None)
    assert credit.booked_at == datetime(2026, 11, 20, 1, 5, 7, tzinfo=UTC)
    assert (debit.direction, debit.amount_fen, debit.payout_id, debit.counterparty_name) == (
        "debit",
        10,
        "PO-1",
        "李四,王五",
    )
    assert debit.booked_at == datetime(2026, 11, 20, 15, 59, 59, tzinfo=UTC)


def test_icbc_file_is_gbk_with_debit_and_credit_columns() -> None:
    content = _file(
        ICBC_HEADER,
        "0200290100000000018,20261120 10:00:00,,500.00,工商测试?公司,6222020200112233445,ICBCI1,,转账收入",
        "0200290100000000018,20261120 11:00:00,499.99,,赵六,6222020200998877665,ICBCP2,PO-9,代发付款",
        encoding="gbk",
    )
    parsed = parse_statement(configured_banks()["icbc"].statement, content, DAY)
    assert parsed.problems == ()
    assert [(line.direction, line.amount_fen) for line in parsed.lines] == [("credit", 50000), ("debit", 49999)]
    assert parsed.lines[0].counterparty_name == "工商测试?公司"  # the bank's own '?' for a character GBK lacks
    assert parsed.lines[1].payout_id == "PO-9"


def test_pab_amounts_are_already_fen() -> None:
    content = _file(PAB_HEADER, "20261120,080000,PABI1,15000000000001,C,123456789,6222020200112233445,张三,,来账")
    (line,) = parse_statement(configured_banks()["pab"].statement, content, DAY).lines
    assert line.amount_fen == 123456789
    assert line.booked_at == datetime(2026, 11, 20, 0, 0, 0, tzinfo=UTC)


def test_every_malformed_row_is_a_problem_with_its_row_number_and_good_rows_still_count() -> None:
    good = "20261120,080000,PABI1,15000000000001,C,100,6222020200112233445,张三,,来账"
    content = _file(
        PAB_HEADER,
        good,
        "20261120,080001,PABI2,15000000000001,C,100",  # row 3: too few fields
        "20261120,080002,PABI3,15000000000001,X,100,6222020200112233445,张三,,来账",  # unknown direction
        "20261120,080003,PABI4,15000000000001,C,1.00,6222020200112233445,张三,,来账",  # yuan in a fen file
        "20261120,080004,PABI5,15000000000001,C,100,6222020200112233445,张三,,退汇",  # unknown remark
        "20261121,080005,PABI6,15000000000001,C,100,6222020200112233445,张三,,来账",  # another day
        good,  # row 8: the same reference again
        "20261120,080006,PABI7,15000000000001,C,100,6222020200112233445,张三,PO-1,来账",  # credit with payout id
        "20261120,080007,PABP8,15000000000001,D,100,6222020200112233445,张三,,出金",  # debit without payout id
        "",  # row 11: empty
    )
    parsed = parse_statement(configured_banks()["pab"].statement, content, DAY)
    assert [line.bank_reference for line in parsed.lines] == ["PABI1"]
    assert parsed.data_rows == 10
    reasons = {problem.row: problem.reason for problem in parsed.problems}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert "字段数 6" in reasons[3]
    assert "未知的借贷方向“X”" in reasons[4]
    assert "TranAmt" in reasons[5] and "1.00" in reasons[5]
    assert "未知的摘要“退汇”" in reasons[6]
    assert "不是对账日 2026-11-20" in reasons[7]
    assert "与第 2 行重复" in reasons[8]
    assert "来账不应有付款编号" in reasons[9]
    assert "ThirdSeqNo" in reasons[10]
    assert "字段数 0" in reasons[11]


def test_yuan_needs_exactly_two_decimals_and_no_float_rounding() -> None:
    rows = [
        "2026-11-20,09:00:00,CEBI1,6226012345678901,贷,0.29,张三,6222020200112233445,,来账",
        "2026-11-20,09:00:01,CEBI2,6226012345678901,贷,12.5,张三,6222020200112233445,,来账",
        "2026-11-20,09:00:02,CEBI3,6226012345678901,贷,0.00,张三,6222020200112233445,,来账",
        "2026-11-20,09:00:03,CEBI4,6226012345678901,贷,-5.00,张三,6222020200112233445,,来账",
    ]
    parsed = parse_statement(configured_banks()["ceb"].statement, _file(CEB_HEADER, *rows), DAY)
    assert [line.amount_fen for line in parsed.lines] == [29]  # 0.29 * 100 is 28.999… as a float
    assert [problem.row for problem in parsed.problems] == [3, 4, 5]


def test_icbc_row_with_both_amounts_and_undecodable_bytes_are_reported() -> None:
    header = _file(ICBC_HEADER, encoding="gbk")
    both = _file(
        "0200290100000000018,20261120 10:00:00,1.00,1.00,赵六,6222020200112233445,ICBCI1,,转账收入", encoding="gbk"
    )
    broken = b"0200290100000000018,20261120 10:00:01,,1.00,\x81\x20,6222020200112233445,ICBCI2,,\xd7\xaa\r\n"
    parsed = parse_statement(configured_banks()["icbc"].statement, header + both + broken, DAY)
    assert parsed.lines == ()
    reasons = {problem.row: problem.reason for problem in parsed.problems}
    assert "有且只有一个" in reasons[2]
    assert "GBK" in reasons[3]


def test_a_file_in_another_banks_layout_is_refused_row_by_row() -> None:
    content = _file(CEB_HEADER, "2026-11-20,09:05:07,CEBI1,6226012345678901,贷,1.00,张三,6222020200112233445,,来账")
    parsed = parse_statement(configured_banks()["pab"].statement, content, DAY)
    assert parsed.lines == ()
    assert [problem.row for problem in parsed.problems] == [1, 2]
    assert "表头" in parsed.problems[0].reason and "平安银行" in parsed.problems[0].reason


CEB_LINE = "2026-11-20,09:05:07,CEBI1,6226012345678901,贷,1234567.89,张三,6222020200112233445,,来账"


def test_the_closing_balance_row_is_read_and_is_not_a_line() -> None:
    ceb = configured_banks()["ceb"].statement
    parsed = parse_statement(ceb, _file(CEB_HEADER, CEB_LINE, "期末余额,1234567.89,,,,,,,,"), DAY)
    assert (parsed.problems, parsed.data_rows, parsed.closing_balance_fen, len(parsed.lines)) == ((), 1, 123456789, 1)
    quiet = parse_statement(configured_banks()["pab"].statement, _file(PAB_HEADER, "期末余额,0,,,,,,,,"), DAY)
    assert (quiet.problems, quiet.data_rows, quiet.closing_balance_fen) == ((), 0, 0)
    without = parse_statement(configured_banks()["ceb"].statement, _file(CEB_HEADER, CEB_LINE), DAY)
    assert (without.problems, without.closing_balance_fen) == ((), None), "the reconciliation reports it missing"


def test_a_malformed_closing_row_and_rows_after_it_are_problems() -> None:
    layout = configured_banks()["ceb"].statement
    bad_amount = parse_statement(layout, _file(CEB_HEADER, "期末余额,12.3,,,,,,,,"), DAY)
    assert [(p.row, p.reason) for p in bad_amount.problems] == [(2, "余额“12.3”格式不正确（应为以元为单位、两位小数）")]
    assert bad_amount.closing_balance_fen is None
    extra = parse_statement(layout, _file(CEB_HEADER, "期末余额,1.00,x,,,,,,,"), DAY)
    assert [p.row for p in extra.problems] == [2] and "只有标签和余额两栏" in extra.problems[0].reason
    after = parse_statement(layout, _file(CEB_HEADER, "期末余额,1.00,,,,,,,,", CEB_LINE), DAY)
    assert (after.closing_balance_fen, after.lines, after.data_rows) == (100, (), 1)
    assert [(p.row, p.reason) for p in after.problems] == [(3, "期末余额行（第 2 行）之后不应再有内容")]


def test_the_verdict_says_nothing_is_open_only_when_nothing_is() -> None:
    assert verdict(OpenCounts(0, 0)) == "✓ 对账完成，无未解决项"
    for counts in (OpenCounts(1, 0), OpenCounts(0, 3), OpenCounts(2, 1, provisional=True)):
        assert "无未解决项" not in verdict(counts) and verdict(counts).startswith("✗"), counts
    assert "其他对账日尚有 3 项" in verdict(OpenCounts(0, 3))
