"""Rent custody amounts: which part of a rent installment and of a deposit must sit in custody.

Shenzhen (2021): a landlord business may take up to 3 months' rent in advance and a deposit of up to
1 month's rent freely; money above that is supervised. Rent and deposit are held apart. A city with
no exemption (0 months) puts all rent and the whole deposit in custody."""

from __future__ import annotations

from dataclasses import dataclass

from app.platform.errors import ValidationError


@dataclass(frozen=True)
class RentPlan:
    monthly_rent_fen: int
    months_per_installment: int
    custody_per_installment_fen: int  # the supervised part of each installment
    custody_per_month_fen: int  # one monthly release to the landlord; the remainder goes at the end
    deposit_custody_fen: int  # held apart until the lease ends

    @property
    def move_in_custody_fen(self) -> int:
        return self.custody_per_installment_fen + self.deposit_custody_fen


def plan_rent(
    monthly_rent_fen: int,
    months_per_installment: int,
    deposit_fen: int,
    rent_months_exempt: int,
    deposit_months_exempt: int,
) -> RentPlan:
    if monthly_rent_fen <= 0 or months_per_installment <= 0 or deposit_fen < 0:
        raise ValidationError("租金、付款周期须大于零，押金不能为负", code="RENT_PLAN_INVALID")
    installment_fen = monthly_rent_fen * months_per_installment
    rent_custody = max(0, installment_fen - rent_months_exempt * monthly_rent_fen)
    deposit_custody = max(0, deposit_fen - deposit_months_exempt * monthly_rent_fen)
    if rent_custody == 0:
        raise ValidationError("按本市规则该租约租金无需监管，不适用租金托管", code="RENT_NOT_SUPERVISED")
    return RentPlan(
        monthly_rent_fen=monthly_rent_fen,
        months_per_installment=months_per_installment,
        custody_per_installment_fen=rent_custody,
        custody_per_month_fen=rent_custody // months_per_installment,
        deposit_custody_fen=deposit_custody,
    )
