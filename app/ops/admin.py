"""Admin home: the live dashboard (every staff role)."""

from __future__ import annotations

from flask_admin import expose
from markupsafe import Markup

from app.admin import charts
from app.admin.base import STAFF, RoleIndexView
from app.domain.money import format_yuan
from app.domain.timezone import SHANGHAI
from app.ops import dashboard
from app.ops.bank_reachability import bank_reachability
from app.web.access import runtime


def _count(value: int) -> str:
    return f"{value} 笔"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


class DashboardView(RoleIndexView):
    read_roles = STAFF

    @expose("/")
    def index(self) -> str:
        rt = runtime()
        figures = dashboard.compute(rt)
        days = [f"{d.day.month}/{d.day.day}" for d in figures.days]
        inbound, outbound, frozen = charts.PALETTE[0], charts.PALETTE[1], charts.PALETTE[4]
        bank_keys = [*rt.banks, *(s.key for s in figures.custody_by_bank), *(r.bank_code for r in figures.openings)]
        bank_color = charts.colors_by_key(bank_keys)
        product_color = charts.colors_by_key([s.key for s in figures.custody_by_product])
        svg = {
            "amounts": charts.columns(
                "每日入金与出金金额",
                days,
                [
                    charts.Series("入金", [d.inbound_fen for d in figures.days], inbound),
                    charts.Series("出金", [d.outbound_fen for d in figures.days], outbound),
                    charts.Series("冻结（担保）", [d.frozen_fen for d in figures.days], frozen),
                ],
                format_yuan,
            ),
            "counts": charts.columns(
                "每日入金与出金笔数",
                days,
                [
                    charts.Series("入金", [d.inbound_count for d in figures.days], inbound),
                    charts.Series("出金", [d.outbound_count for d in figures.days], outbound),
                    charts.Series("冻结（担保）", [d.frozen_count for d in figures.days], frozen),
                ],
                _count,
            ),
            "city": charts.bars(
                "存管资金（按城市）", [(s.label, s.value) for s in figures.custody_by_city], format_yuan
            ),
            "bank": charts.bars(
                "存管资金（按银行）",
                [(s.label, s.value) for s in figures.custody_by_bank],
                format_yuan,
                [bank_color[s.key] for s in figures.custody_by_bank],
            ),
            "product": charts.bars(
                "存管资金（按产品）",
                [(s.label, s.value) for s in figures.custody_by_product],
                format_yuan,
                [product_color[s.key] for s in figures.custody_by_product],
            ),
            "states": charts.bars(
                "存管单（按状态）", [(s.label, s.value) for s in figures.deals_by_state], lambda n: f"{n} 单"
            ),
            "openings": charts.lines(
                "各银行每小时开户数（近 24 小时）",
                [f"{hour.astimezone(SHANGHAI):%H}时" for hour in figures.hours],
                [charts.Series(rate.label, rate.per_hour, bank_color[rate.bank_code]) for rate in figures.openings],
                lambda n: f"{n} 户",
            ),
        }
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/dashboard.html",
            figures=figures,
            banks=[(code, rt.banks[code].name, reach) for code, reach in bank_reachability(rt).items()],
            charts={name: Markup(drawing) for name, drawing in svg.items()},  # the charts escape every text
            rates={
                "payout": _percent(figures.payout_success_rate),
                "inbound": _percent(figures.inbound_direct_rate),
            },
            day_rates=[(d, _percent(dashboard.rate(d.payouts_succeeded, d.payouts_failed))) for d in figures.days],
        )
