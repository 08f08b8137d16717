"""工作流与协议: workflows, clauses, agreement templates, calendars, banks and product variants in the console - the
published text, the version under work (edited as text, or started under a new name), its simulation and the
review flow. Every change goes through
`app.definitions.publishing` (roles, four eyes, audit); ops write drafts, simulate and submit; reviewers approve,
reject and publish; auditors read."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.admin.base import RoleView
from app.db.definition_models import DefinitionVersion
from app.definitions import publishing
from app.definitions.clause_view import EDITOR_ROLES, ClauseEditorRoutes
from app.definitions.studio_view import STUDIO_KINDS, DefinitionStudioRoutes
from app.domain.config_versions import AUTHOR_ROLES, OPEN_STATUSES, REVIEWER_ROLES, STATUS_LABELS
from app.platform.errors import CunguanError
from app.web.access import runtime


@dataclass(frozen=True)
class Row:
    kind: str
    name: str
    published_sha256: str | None
    open: DefinitionVersion | None


class DefinitionsView(DefinitionStudioRoutes, ClauseEditorRoutes, RoleView):
    read_roles = frozenset({"ops", "reviewer", "auditor"})
    write_roles = frozenset({"ops", "reviewer"})

    def _require(self, roles: tuple[str, ...]) -> None:
        if self.actor.role not in roles:
            abort(403)

    @staticmethod
    def _checked(kind: str, name: str) -> tuple[str, str]:
        if kind not in runtime().definitions.kinds or not publishing.NAME.match(name) or ".." in name:
            abort(404)
        return kind, name

    def _back(self, kind: str, name: str) -> Response:
        return redirect(url_for(".definition", kind=kind, ref=name))

    @expose("/")
    def index(self) -> str:
        rt = runtime()
        rows = []
        with rt.db.uow() as uow:
            versions = list(uow.session.scalars(select(DefinitionVersion)))
        for kind in rt.definitions.kinds:
            published = rt.definitions.published_hashes(kind)
            names = sorted({*published, *(v.name for v in versions if v.kind == kind)})
            for name in names:
                current = next(
                    (v for v in versions if (v.kind, v.name) == (kind, name) and v.status in OPEN_STATUSES), None
                )
                rows.append(Row(kind, name, published.get(name), current))
        labels = {code: kind.label for code, kind in rt.definitions.kinds.items()}
        can_author = self.can_write and self.actor.role in AUTHOR_ROLES
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/definitions.html",
            rows=rows,
            labels=labels,
            statuses=STATUS_LABELS,
            can_author=can_author,
            can_edit_clauses=self.actor.role in EDITOR_ROLES,
        )

    @expose("/new", methods=("POST",))
    def new(self) -> Response:
        """A draft under a name of the author's choice: a new bank, product variant, template file or clause."""
        kind, name = request.form.get("kind", ""), request.form.get("name", "").strip()
        if kind not in runtime().definitions.kinds or not publishing.NAME.match(name) or ".." in name:
            self._require(AUTHOR_ROLES)
            flash(f"名称 {name} 无效（字母、数字、_ . @ / -，不含 ..）", "error")
            return redirect(url_for(".index"))
        return self._step(kind, name, AUTHOR_ROLES, "已保存为草稿", "draft")

    @expose("/<kind>/<path:ref>")
    def definition(self, kind: str, ref: str) -> str:
        kind, name = self._checked(kind, ref)
        rt = runtime()
        published = rt.definitions.published(kind, name)
        with rt.db.uow() as uow:
            session = uow.session
            query = select(DefinitionVersion).where(DefinitionVersion.kind == kind, DefinitionVersion.name == name)
            versions = list(session.scalars(query.order_by(DefinitionVersion.version.desc())))
            current = next((v for v in versions if v.status in OPEN_STATUSES), None)
            simulation = publishing.latest_simulation(session, current) if current is not None else None
        if published is None and not versions:
            abort(404)
        text = current.content if current is not None else published.content if published is not None else ""
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/definition.html",
            kind=kind,
            name=name,
            label=rt.definitions.kinds[kind].label,
            versions=versions,
            current=current,
            text=text,
            simulation=simulation,
            statuses=STATUS_LABELS,
            can_author=self.can_write and self.actor.role in AUTHOR_ROLES,
            can_review=self.can_write and self.actor.role in REVIEWER_ROLES,
            actor=self.actor.username,
            has_studio=kind in STUDIO_KINDS,
        )

    def _step(self, kind: str, name: str, roles: tuple[str, ...], done: str, step: str) -> Response:
        self._require(roles)
        kind, name = self._checked(kind, name)
        rt, who, comment = runtime(), self.actor.username, request.form.get("comment", "")
        content = request.form.get("content", "")
        if step == "draft" and not content.strip():
            flash("内容不能为空", "error")
            return self._back(kind, name)
        try:
            if step == "draft":
                publishing.save_draft(rt, kind, name, content, who)
            elif step == "submit":
                publishing.submit(rt, kind, name, who)
            elif step == "simulate":
                publishing.request_simulation(rt, kind, name, who)
            elif step == "publish":
                publishing.publish(rt, kind, name, who)
            else:
                publishing.review(rt, kind, name, who, comment, approve=step == "approve")
        except CunguanError as error:
            details = error.details if isinstance(error.details, list) else []
            flash("；".join([error.message, *map(str, details[1:6])]), "error")
            return self._back(kind, name)
        flash(done, "success")
        return self._back(kind, name)

    @expose("/<kind>/<path:ref>/draft", methods=("POST",))
    def save(self, kind: str, ref: str) -> Response:
        return self._step(kind, ref, AUTHOR_ROLES, "已保存为草稿", "draft")

    @expose("/<kind>/<path:ref>/submit", methods=("POST",))
    def submit(self, kind: str, ref: str) -> Response:
        return self._step(kind, ref, AUTHOR_ROLES, "已提交审核", "submit")

    @expose("/<kind>/<path:ref>/simulate", methods=("POST",))
    def simulate(self, kind: str, ref: str) -> Response:
        return self._step(kind, ref, AUTHOR_ROLES + REVIEWER_ROLES, "仿真已提交，由后台任务运行", "simulate")

    @expose("/<kind>/<path:ref>/approve", methods=("POST",))
    def approve(self, kind: str, ref: str) -> Response:
        return self._step(kind, ref, REVIEWER_ROLES, "已批准", "approve")

    @expose("/<kind>/<path:ref>/reject", methods=("POST",))
    def reject(self, kind: str, ref: str) -> Response:
        return self._step(kind, ref, REVIEWER_ROLES, "已驳回", "reject")

    @expose("/<kind>/<path:ref>/publish", methods=("POST",))
    def publish(self, kind: str, ref: str) -> Response:
        return self._step(kind, ref, REVIEWER_ROLES, "已发布，新建的存管单即刻使用", "publish")
