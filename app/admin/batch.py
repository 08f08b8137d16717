"""Batch actions on admin lists: flask-admin's `@action`, run without script (our CSP allows no inline JS).

A list's checkboxes post the chosen rows and action to `batch`. The first post shows a confirmation page
(with the action's confirmation text and, when the action needs one, a required reason); the confirmed
post runs the action row by row — each row is checked on its own by the service, in its own transaction —
and reports how many succeeded and why the others were refused.
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
from app.platform.errors import CunguanError

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
        if request.form.get("confirmed") != "1" or (needs_reason and not reason):
            if request.form.get("confirmed") == "1":
                flash("请填写操作原因", "error")
            return self.render(  # type: ignore[no-any-return]
                "admin/cunguan/batch_confirm.html",
                rows=rows,
                row_labels=self.row_labels(rows),
                action=name,
                text=text,
                confirmation=confirmation,
                needs_reason=needs_reason,
                return_url=get_redirect_target() or self.get_url(".index"),
            )
        report: BatchReport = function(rows, reason)
        flash(f"{text}：{report.summary()}", "success" if not report.refused else "warning")
        return self._back()
