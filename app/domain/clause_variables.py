"""The deal data a clause may print, as the clause editor offers it, and the sample data its preview renders with
(pure). Every variable is a text of the agreement's context (`app.domain.agreement.agreement_context`): a
test checks each one against the context of a sample deal, so the list cannot name data that does not exist."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.domain.agreement import AgreementData, Party, agreement_context
from app.domain.agreement_terms import deal_terms


@dataclass(frozen=True)
class Variable:
    path: str  # what the clause writes between {{ }}
    label: str  # in Chinese, for the editor's list


_DEAL = (
    ("agreement_no", "协议编号"),
    ("created_date", "签订日期"),
    ("city_name", "城市"),
    ("product_name", "业务名称"),
    ("platform_name", "平台名称"),
    ("bank_name", "存管银行"),
    ("account_no", "存管账号"),
    ("authority", "监管部门"),
    ("buyer.name", "甲方（付款方）姓名或名称"),
    ("buyer.id_number", "甲方证件号码（按模板遮蔽）"),
    ("buyer.bank_name", "甲方开户银行"),
    ("buyer.bank_account", "甲方银行账号（按模板遮蔽）"),
    ("seller.name", "乙方（收款方）姓名或名称"),
    ("seller.id_number", "乙方证件号码（按模板遮蔽）"),
    ("seller.bank_name", "乙方开户银行"),
    ("seller.bank_account", "乙方银行账号（按模板遮蔽）"),
    ("property.address", "房屋坐落"),
    ("property.certificate_no", "不动产权证书号"),
    ("price.figure", "成交价或合同金额（小写）"),
    ("price.upper", "成交价或合同金额（大写）"),
    ("custody.figure", "存管金额（小写）"),
    ("custody.upper", "存管金额（大写）"),
    ("terms.contract_signed_on", "合同签订日期"),
    ("terms.lease_starts_on", "租期开始日"),
    ("terms.lease_ends_on", "租期结束日"),
    ("terms.lease_months", "租期（月）"),
    ("terms.months_per_installment", "付款周期（月）"),
    ("terms.signed_on", "意向协议签订日"),
    ("terms.expires_on", "到期日"),
    ("terms.freeze_from", "冻结开始日"),
    ("terms.payment_method", "付款方式"),
)
DEAL_VARIABLES = tuple(Variable(path, label) for path, label in _DEAL)
EXTRA_PREFIX = "extra."
SAMPLE_CLAUSE_NO = "第八条"
SAMPLE_FACTS = {
    "contract_signed_on": "2026-11-20",
    "lease_starts_on": "2026-12-01",
    "lease_months": 12,
    "months_per_installment": 3,
    "signed_on": "2026-11-20",
    "expires_on": "2026-12-31",
    "freeze_from": "2026-12-01",
    "payment_method": "商业贷款",
}


def offered(extras: Mapping[str, str]) -> tuple[Variable, ...]:
    """The deal's variables, then the cities' extra fields (`extra.<name>`, by name → label), by name."""
    more = tuple(Variable(f"{EXTRA_PREFIX}{name}", f"附加信息：{label}") for name, label in sorted(extras.items()))
    return DEAL_VARIABLES + more


def sample_data() -> AgreementData:
    """A resale deal of sample people (never a real one) for the clause preview."""
    return AgreementData(
        agreement_no="样本-预览",
        city_name="南京",
        product_name="二手房交易资金存管",
        bank_name="样本存管银行",
        buyer=Party("张三", "11010519491231002X", "样本银行甲支行", "6226620012345678"),
        seller=Party("李四", "110101198001010053", "样本银行乙支行", "6222600260001072444"),
        property_address="南京市玄武区样本路1号1单元101",
        certificate_no="苏(2026)南京市不动产权第0000001号",
        price_fen=300_000_000,
        custody_amount_fen=100_000_000,
        created_at=datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
        account_no=None,
        terms=deal_terms(SAMPLE_FACTS),
    )


def sample_context(extra_names: Iterable[str]) -> dict[str, Any]:
    """The agreement context of the sample deal, each extra field "（样本）", and the clause's number."""
    context = agreement_context(sample_data())
    context["extra"] = {name: "（样本）" for name in extra_names}
    return {**context, "clause_no": SAMPLE_CLAUSE_NO}
