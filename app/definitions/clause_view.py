"""工作流与协议 · 条款编辑器: a clause edited as a title and a body in a tiny markup (`app.domain.clause_markup`),
variables picked from a list, a server-rendered preview (the 预览 button works without JavaScript; static/
clause_editor.js only refreshes it as one types and inserts a variable at the cursor), saved as a draft that goes
through review like every definition (the clause's page: simulate, submit, approve, publish). Ops write; reviewers
open it and preview; a clause the markup cannot say is edited as text on its page."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_admin import expose
from werkzeug.wrappers import Response

from app.definitions import clause_editing as editing
from app.domain.clause_markup import ClauseMarkupError, ClauseText, to_clause
from app.domain.clause_variables import Variable
from app.domain.config_versions import AUTHOR_ROLES, REVIEWER_ROLES, STATUS_LABELS
from app.platform.errors import CunguanError
from app.web.access import runtime

EDITOR_ROLES = AUTHOR_ROLES + REVIEWER_ROLES
LIVE_HEADER = "X-Clause-Preview"  # the script's refresh: answer the preview alone


class ClauseEditorRoutes:
    """Mixed into `DefinitionsView` (its `_require`, `render`, `actor`, `can_write`)."""

    def _clause_name(self, name: str) -> str:
        self._require(EDITOR_ROLES)  # type: ignore[attr-defined]
        if not editing.CLAUSE_NAME.match(name):
            abort(404)
        return name

    @expose("/clause-editor/")
    def clause_editor_open(self) -> Response:
        """The 打开条款编辑器 form on the list: a clause by name (a new name starts a new clause)."""
        name = self._clause_name(request.args.get("name", "").strip())
        return redirect(url_for(".clause_editor", clause=name))

    @expose("/clause-editor/<clause>")
    def clause_editor(self, clause: str) -> str:
        name = self._clause_name(clause)
        offer = editing.variables(runtime())
        standing = editing.standing(runtime(), name, offer)
        markup = standing.markup or ClauseText("", "")
        source = standing.source if standing.markup is not None and standing.source else None
        return self._editor_page(name, offer, standing, markup, source, [])

    @expose("/clause-editor/<clause>", methods=("POST",))
    def clause_editor_post(self, clause: str) -> str | Response | tuple[str, int]:
        name = self._clause_name(clause)
        rt = runtime()
        offer = editing.variables(rt)
        markup = ClauseText(request.form.get("title", ""), request.form.get("body", "").replace("\r\n", "\n"))
        action = request.form.get("action", "preview")
        if action == "insert":
            chosen = request.form.get("variable", "")
            if chosen in editing.paths(offer):
                markup = ClauseText(markup.title, f"{markup.body}{{{{ {chosen} }}}}")
        if action == "save":
            self._require(AUTHOR_ROLES)  # type: ignore[attr-defined]
            try:
                version = editing.save(rt, name, markup, offer, self.actor.username)  # type: ignore[attr-defined]
            except ClauseMarkupError as bad:
                standing = editing.standing(rt, name, offer)
                return self._editor_page(name, offer, standing, markup, None, bad.problems), 422
            except CunguanError as error:
                flash(error.message, "error")
                return redirect(url_for(".clause_editor", clause=name))
            flash(f"已保存为第 {version.version} 版草稿；请在条款页运行仿真并提交审核", "success")
            return redirect(url_for(".clause_editor", clause=name))
        source, problems = _converted(markup, offer)
        if request.headers.get(LIVE_HEADER):
            return render_template("admin/cunguan/_clause_preview.html", **_preview(source, problems, offer))
        page = self._editor_page(name, offer, editing.standing(rt, name, offer), markup, source, problems)
        return (page, 422) if problems else page

    def _editor_page(
        self,
        name: str,
        offer: tuple[Variable, ...],
        standing: editing.Standing,
        clause: ClauseText,
        source: str | None,
        problems: list[str],
    ) -> str:
        can_author = self.can_write and self.actor.role in AUTHOR_ROLES  # type: ignore[attr-defined]
        return self.render(  # type: ignore[attr-defined,no-any-return]
            "admin/cunguan/clause_editor.html",
            name=name,
            offer=offer,
            standing=standing,
            clause=clause,
            may_save=can_author and standing.editable,
            live_header=LIVE_HEADER,
            statuses=STATUS_LABELS,
            **_preview(source, problems, offer),
        )


def _converted(clause: ClauseText, offer: tuple[Variable, ...]) -> tuple[str | None, list[str]]:
    try:
        return to_clause(clause, editing.paths(offer)), []
    except ClauseMarkupError as bad:
        return None, bad.problems


def _preview(source: str | None, problems: list[str], offer: tuple[Variable, ...]) -> dict[str, object]:
    """What the preview pane shows: the problems, or the clause rendered for the sample deal."""
    if source is None:
        return {"problems": problems, "rendered": None}
    try:
        return {"problems": problems, "rendered": editing.preview(source, offer)}
    except CunguanError as error:
        return {"problems": [*problems, error.message], "rendered": None}
