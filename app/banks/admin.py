"""Banks for admins: endpoints and public-key fingerprints (read-only) and the account-opening limits (editable)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import expose
from werkzeug.wrappers import Response

from app.admin.base import RoleView
from app.banks import settings as bank_settings
from app.banks.opening_progress import opening_progress
from app.platform.errors import CunguanError
from app.web.access import runtime


class BanksView(RoleView):
    read_roles = frozenset({"auditor", "admin"})
    write_roles = frozenset({"admin"})

    @expose("/")
    def index(self) -> str:
        rt = runtime()
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/banks.html", banks=bank_settings.overview(rt), openings=opening_progress(rt)
        )

    @expose("/<bank_code>/limits", methods=("POST",))
    def limits(self, bank_code: str) -> Response:
        form = request.form
        try:
            limits = bank_settings.set_opening_limits(
                runtime(), self.actor.label, bank_code, form.get("per_second", ""), form.get("per_day", "")
            )
        except CunguanError as error:
            flash(error.message, "error")
        else:
            moved = f"；排队中的 {limits.rescheduled} 户开户已按新限速提前" if limits.rescheduled else ""
            flash(f"{bank_code} 开户限速已改为每秒 {limits.per_second} 户、每日 {limits.per_day} 户{moved}", "success")
        return redirect(url_for(".index"))
