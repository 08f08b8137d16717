"""Batch actions on admin lists: flask-admin's `@action`, run without script (our CSP allows no inline JS).

A list's checkboxes post the chosen rows and action to `batch`. The first post shows a confirmation page
(with the action's confirmation text and, when the action needs one, a required reason); the confirmed
post runs the action row by row — each row is checked on its own by the service, in its own transaction —
and reports how many succeeded and why the others were refused.

An action that moves money (`money_plan` says what it would pay) is confirmed like a deal's money step: the
page shows each payout (payee masked, amount in figures and 大写, what follows) and the rows it would refuse,
and the confirmed post needs that page's token (`app/web/money_confirm.py`), bound to the rows and their state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from flask import flash, redirect, request
from flask_admin import expose
from flask_admin.actions import ActionsMixin
from flask_admin.helpers import get_redirect_target
from werkzeug.wrappers import Response

from app.admin.base import RoleView
from app.deals.money_preview import PlannedPayout
from app.platform.errors import CunguanError
from app.web import money_confirm

MAX_ROWS = 100


@dataclass
class BatchReport:
    done: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (row, why)

    def summary(self) -> str:
        text = f"成功 {len(self.done)} 项"
        if self.refused:
            reasons = "；".join(f"{row}：{why}" for row, why in self.refused)
            text += f"，未执行 {len(self.refused)} 项（{reasons}）"
        return text


@dataclass(frozen=True)
class MoneyPlan:
    """What a money-moving batch action would do now: the payouts of the rows it would act on (row label,
    payout), the rows it would refuse and why, and the rows' state (a confirmation of another state is stale)."""

    payouts: list[tuple[str, PlannedPayout]]
    refused: list[tuple[str, str]]
    state: str

    @property
    def total_fen(self) -> int:
        return sum(payout.amount_fen for _, payout in self.payouts)


def each(rows: list[str], act: Callable[[str], object], labels: dict[str, str] | None = None) -> BatchReport:
    """Run `act` on every row on its own; a refusal of one row does not stop the others. The report names
    rows by `labels` (e.g. a deal's number for its id) where given."""
    report, labels = BatchReport(), labels or {}
    for row in rows:
        try:
            act(row)
        except CunguanError as error:
            report.refused.append((labels.get(row, row), error.message))
        else:
            report.done.append(labels.get(row, row))
    return report


class BatchView(RoleView, ActionsMixin):
    """A role-checked view whose `@action(name, text, confirmation)` methods take (rows, reason)."""

    reason_actions: ClassVar[frozenset[str]] = frozenset()  # actions that need a reason

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.init_actions()

    def row_labels(self, rows: list[str]) -> dict[str, str]:
        """How the confirmation names the selected rows (a deal's number rather than its database id)."""
        return {row: row for row in rows}

    def money_plan(self, action: str, rows: list[str]) -> MoneyPlan | None:
        """What `action` on `rows` would pay, for an action that moves money; None for the others."""
        return None

    def _back(self) -> Response:
        target = get_redirect_target()
        return redirect(target or self.get_url(".index"))

    @expose("/batch", methods=("POST",))
    def batch(self) -> Response | str:
        rows = list(dict.fromkeys(row for row in request.form.getlist("rowid") if row))
        name = request.form.get("action", "")
        handler = self._actions_data.get(name)
        if handler is None:
            flash("请选择批量操作", "error")
            return self._back()
        if not rows:
            flash("请先勾选要处理的记录", "error")
            return self._back()
        if len(rows) > MAX_ROWS:
            flash(f"一次最多处理 {MAX_ROWS} 项", "error")
            return self._back()
        function, text, confirmation = handler
        needs_reason = name in self.reason_actions
        reason = request.form.get("reason", "").strip()
        confirmed = request.form.get("confirmed") == "1"
        plan = self.money_plan(name, rows)
        token_claims = (f"batch:{self.endpoint}:{','.join(rows)}", name, plan.state if plan else "", {})
        if confirmed and needs_reason and not reason:
            flash("请填写操作原因", "error")
            confirmed = False
        if confirmed and plan is not None:
            token = request.form.get(money_confirm.FIELD, "")
            if not money_confirm.valid(token, *token_claims):
                if token:
                    flash("确认已失效（所选记录的状态已变化或已超过 15 分钟），请重新核对后确认", "error")
                confirmed = False
        if not confirmed:
            return self.render(  # type: ignore[no-any-return]
                "admin/cunguan/batch_confirm.html",
                rows=rows,
                row_labels=self.row_labels(rows),
                action=name,
                text=text,
                confirmation=confirmation,
                needs_reason=needs_reason,
                plan=plan,
                token=money_confirm.issue(*token_claims) if plan is not None else None,
                return_url=get_redirect_target() or self.get_url(".index"),
            )
        report: BatchReport = function(rows, reason)
        flash(f"{text}：{report.summary()}", "success" if not report.refused else "warning")
        return self._back()
