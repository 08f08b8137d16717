"""Chinese labels for every code a person can see: products (their declarations' names), banks, ledger
accounts, jobs, payouts, audit actions, callbacks. One place, pure (no Flask): the web filters
(`app/web/labels.py`), the console and the dashboard read them. A code without a label is shown as it is,
never as `None`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from app.domain.products import ProductRegistry

EMPTY = "—"

ACCOUNT_TYPE_LABELS = {"asset": "资产", "liability": "负债", "income": "收入", "expense": "费用", "equity": "权益"}

JOB_KIND_LABELS = {
    "open_virtual_account": "开立存管虚户",
    "check_virtual_account": "查询开户结果",
    "submit_payout": "提交付款",
    "query_payout": "查询付款结果",
    "check_payout": "核对付款结果",
    "bank_freeze": "银行冻结",
    "bank_unfreeze": "银行解冻",
    "agreement_countersign": "银行协议签章",
    "simulate_city": "城市配置仿真",
}

JOB_STATUS_LABELS = {"pending": "待执行", "running": "执行中", "done": "已完成", "dead": "已放弃"}

PAYOUT_STATUS_LABELS = {
    "awaiting_approval": "待审批",
    "pending": "待提交银行",
    "submitted": "银行处理中",
    "succeeded": "已付款",
    "failed": "付款失败",
}

PAYOUT_PURPOSE_LABELS = {"release": "解除存管付款", "refund": "原路退款", "return": "挂账原路退回"}

VIRTUAL_ACCOUNT_STATUS_LABELS = {"requested": "开户中", "opened": "已开立", "closed": "已销户", "failed": "开户失败"}

CALLBACK_TYPE_LABELS = {"account_opened": "开户回执", "funds_arrived": "入账通知", "payout_result": "付款结果"}

CALLBACK_OUTCOME_LABELS = {
    "processed": "已处理",
    "recorded_without_transition": "已记录，未触发流转",
    "already_opened": "账户已开立（重复）",
    "deal_closed_returning": "存管单已结束，原路退回",
    "debit": "出账记录",
    "duplicate_bank_reference": "重复流水，未重复入账",
    "suspense": "转入挂账",
    "unknown_request": "未知开户申请",
    "wrong_payer_returning": "非指定付款人，原路退回",
    "wrong_payer_review": "非指定付款人，待人工处理",
}

# audit actions: the exact ones, then the families whose last part is a workflow event or an operation
AUDIT_ACTION_LABELS = {
    "auth.login": "登录",
    "auth.login_failed": "登录失败",
    "auth.lockout": "账户锁定",
    "deal.create": "新建存管单",
    "deal.resend_signature": "重新发起签署",
    "deal.freeze": "冻结存管单",
    "deal.unfreeze": "解冻存管单",
    "agreement.sign": "签署协议文件",  # the platform or a party: the entry's detail names the signer
    "agreement.bank_signed": "银行签章",
    "agreement.party_signed": "当事人签署协议",
    "signing.requested": "发送签署链接",
    "signing.opened": "打开签署页面",
    "signing.code_sent": "发送签署验证码",
    "signing.check_failed": "签署身份核验未通过",
    "signing.verified": "签署身份核验通过",
    "signing.client_limited": "签署请求过于频繁（按来源地址限制）",
    "signing.reissued": "重新发送签署链接",
    "agreement.download": "下载协议",
    "payout.open": "发起付款",
    "payout.approve": "审批付款",
    "payout.submitted": "付款已提交银行",
    "payout.result": "付款结果",
    "payee_amendment.propose": "提出收款账户变更",
    "payee_amendment.approve": "审批收款账户变更",
    "reconciliation.resolve": "处理对账差异",
    "callback_alert.resolve": "处理回调告警",
    "bank.opening_limits": "调整开户限速",
    "job.retry": "重试任务",
    "export.csv": "导出 CSV",
    "contracts.import": "导入存量合同",
    "pii.unmask": "查看完整个人信息",
    "pii.search": "按证件号或手机号查询",
    "city_config.draft": "保存城市配置草稿",
    "city_config.submit": "提交城市配置审核",
    "city_config.approve": "批准城市配置",
    "city_config.reject": "退回城市配置",
    "city_config.publish": "发布城市配置",
    "city_config.rollback": "回滚城市配置",
    "city_config.import": "导入城市配置文件",
    "user.create": "新建用户",
    "user.change_password": "修改密码",
    "user.reset_password": "重置密码",
    "user.set_active": "启用或停用用户",
    "user.role_grant.propose": "提出角色授权",
    "user.role_grant.approve": "批准角色授权",
    "user.role_grant.reject": "驳回角色授权",
    "suspense.match_propose": "提出挂账匹配",
    "suspense.match": "批准挂账匹配",
    "suspense.return": "挂账原路退回",
}
AUDIT_FAMILY_LABELS = {
    "workflow": "流程",
    "deal": "存管单操作",
    "payout": "付款",
    "city_config": "城市配置",
    "user": "用户",
    "suspense": "挂账",
    "ledger": "账务",
    "agreement": "协议",
    "signing": "当事人签署",
}


def dash(value: Any) -> Any:
    """The value, or a dash for nothing (None, empty text): a page never says None."""
    return EMPTY if value is None or value == "" else value


def product_label(code: str | None, products: ProductRegistry) -> str:
    """A product's Chinese name from its declaration (`app.domain.products`)."""
    return EMPTY if not code else products.get(code).name if code in products else code


def definition_label(name: str, products: ProductRegistry, bank_names: Mapping[str, str]) -> str:
    """A definition's name in Chinese: a product variant or a bank by its name (`new_home_supervision` →
    新房资金监管, `ceb` → 中国光大银行), `resale_escrow@2` → 二手房资金存管 · 第 2 版,
    `resale_escrow/v1/agreement.html.j2` → 二手房资金存管 · v1 · agreement.html.j2; clauses, calendars and shared
    files keep their names."""
    if name in products:
        return products.get(name).name
    if name in bank_names:
        return bank_names[name]
    head, at, version = name.partition("@")
    if at and head in products:
        return f"{products.get(head).name} · 第 {version} 版"
    first, slash, rest = name.partition("/")
    if slash and first in products:
        return f"{products.get(first).name} · {rest.replace('/', ' · ')}"
    return name


def bank_label(code: str | None, names: Mapping[str, str]) -> str:
    """A bank's Chinese name (中国光大银行) among `names` (code -> name: the runtime's banks, as published)."""
    return EMPTY if not code else names.get(code, code)


def account_label(code: str | None, bank_names: Mapping[str, str]) -> str:
    """A ledger account for people: 存管户 RE…, 银行清算户（中国光大银行）, 挂账（中国光大银行）."""
    if not code:
        return EMPTY
    kind, _, rest = code.partition(":")
    if kind == "custody":
        return f"存管户 {rest}"
    if kind == "bank_clearing":
        return f"银行清算户（{bank_label(rest, bank_names)}）"
    if kind == "suspense":
        return f"挂账（{bank_label(rest, bank_names)}）"
    if code == "fee_income":
        return "手续费收入"
    return code


def audit_action_label(action: str | None) -> str:
    """An audit action in Chinese; a workflow event is named by its workflow's label when given."""
    if not action:
        return EMPTY
    if action in AUDIT_ACTION_LABELS:
        return AUDIT_ACTION_LABELS[action]
    family, _, rest = action.partition(".")
    if family in AUDIT_FAMILY_LABELS:
        return f"{AUDIT_FAMILY_LABELS[family]}：{rest}" if rest else AUDIT_FAMILY_LABELS[family]
    return action


def label_of(table: dict[str, str], code: str | None) -> str:
    """`code`'s label in `table`, the code itself when it has none, a dash for nothing."""
    return EMPTY if not code else table.get(code, code)


def json_text(value: Any) -> str:
    """A JSON value as people read it: Chinese as Chinese (no \\u escapes), keys in order; nothing as a dash."""
    if value is None or value == {} or value == []:
        return EMPTY
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=("，", "："))
