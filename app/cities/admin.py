"""城市配置: drafts edited as JSON, diff, workflow diagrams, simulation and the review flow.

Every change goes through `app.cities.publishing` (rules, roles, audit entries); this view only
adds the per-action roles on top of the base view's read/write split: ops write drafts, simulate and
submit; reviewers approve, reject, publish and propose rollbacks (reviewed like any version); auditors read.
Administrators, who manage accounts only, see none of it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from sqlalchemy import select
from werkzeug.wrappers import Response

from app.admin.base import RoleView
from app.cities import publishing, review
from app.cities import simulation_runs as simulation_jobs
from app.cities.launches import is_live, set_live
from app.cities.preview_view import PreviewRoutes
from app.cities.sources import SessionCitySource, open_version, published_version
from app.cities.studio_view import StudioRoutes, located_problems
from app.cities.versions import unified_diff
from app.db.config_models import CityConfigVersion, ConfigSimulation
from app.domain.config_versions import AUTHOR_ROLES, OPEN_STATUSES, REVIEWER_ROLES, STATUS_LABELS, content_sha256
from app.domain.problems import CityConfigInvalid, Problem
from app.platform.errors import CunguanError, WorkflowError
from app.web.access import runtime

VIRTUAL = "_virtual"
STEM = re.compile(r"^(_?[A-Za-z0-9]{1,15})$")  # fits `city_code` (16 characters)
ADMIN_CODE = re.compile(r"^\d{6}$")


@dataclass(frozen=True)
class _Pair:
    """The two texts `unified_diff` compares."""

    published_text: str | None
    draft_text: str | None

    def draft(self, stem: str) -> str | None:
        return self.draft_text

    def published(self, stem: str) -> str | None:
        return self.published_text


@dataclass(frozen=True)
class CityRow:
    stem: str
    name: str
    published: CityConfigVersion | None
    open: CityConfigVersion | None
    visible: tuple[str, ...] | None  # the products agents see (None: the city is not live)


def _name_of(content: str | None) -> str:
    try:
        data = json.loads(content or "")
    except json.JSONDecodeError:
        return ""
    return str(data.get("name", "")) if isinstance(data, dict) else ""


class ConfigsView(StudioRoutes, PreviewRoutes, RoleView):
    read_roles = frozenset({"ops", "reviewer", "auditor"})
    write_roles = frozenset({"ops", "reviewer"})

    # --- helpers ------------------------------------------------------------------------------------------

    def _require(self, roles: tuple[str, ...]) -> None:
        if self.actor.role not in roles:
            abort(403)

    @property
    def can_author(self) -> bool:
        return self.can_write and self.actor.role in AUTHOR_ROLES

    @property
    def can_review(self) -> bool:
        return self.can_write and self.actor.role in REVIEWER_ROLES

    @staticmethod
    def _stem(stem: str) -> str:
        if not STEM.match(stem):
            abort(404)
        return stem

    def _back(self, stem: str) -> Response:
        return redirect(url_for(".city", stem=stem))

    # --- pages --------------------------------------------------------------------------------------------

    @expose("/")
    def index(self) -> str:
        rt = runtime()
        rows = []
        live = {city.admin_code: city for city in rt.cities.live_cities()}
        with rt.db.uow() as uow:
            session = uow.session
            source = SessionCitySource(session, rt.cities.folder)
            stems = {*source.stems(), *session.scalars(select(CityConfigVersion.city_code).distinct())}
            for stem in sorted(stems):
                published, current = published_version(session, stem), open_version(session, stem)
                content = current.content if current is not None else source.read(stem)
                name = _name_of(content.decode() if isinstance(content, bytes) else content)
                city = live.get(stem)
                visible = None if city is None else tuple(rt.products.get(p).name for p in sorted(city.products))
                rows.append(CityRow(stem, name, published, current, visible))
        sources = [(row.stem, row.name) for row in rows if row.stem == VIRTUAL or row.published is not None]
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/configs.html",
            rows=rows,
            sources=sources,
            statuses=STATUS_LABELS,
            can_author=self.can_author,
        )

    def _city_page(self, stem: str, typed: str | None = None, problems: list[Problem] | None = None) -> str:
        rt = runtime()
        with rt.db.uow() as uow:
            session = uow.session
            query = select(CityConfigVersion).where(CityConfigVersion.city_code == stem)
            versions = list(session.scalars(query.order_by(CityConfigVersion.version.desc())))
            current = next((v for v in versions if v.status in OPEN_STATUSES), None)
            raw = SessionCitySource(session, rt.cities.folder).read(stem)
            published_text = raw.decode() if raw is not None else None
            if not versions and published_text is None:
                abort(404)
            working = current.content if current is not None else published_text or ""
            workflows = self._workflows(session, stem, working)
            # the latest simulation of the content shown (the version under work, else the published content)
            simulation = session.scalar(
                select(ConfigSimulation)
                .where(ConfigSimulation.city_code == stem, ConfigSimulation.content_sha256 == content_sha256(working))
                .order_by(ConfigSimulation.id.desc())
                .limit(1)
            )
            run = simulation_jobs.latest_run(session, stem)
            name = _name_of(working)
            warnings = review.warnings(rt, session, stem, name, current)
            live = is_live(session, rt.cities.folder, stem)
            published = any(v.status == "published" for v in versions)
            compared, changes = review.plain_changes(rt, session, current) if current is not None else (None, [])
            if current is not None and current.copied_from is not None and published_text is None:
                raw = SessionCitySource(session, rt.cities.folder).read(current.copied_from)
                published_text = raw.decode() if raw is not None else None
        diff = unified_diff(_Pair(published_text, current.content), stem) if current is not None else ""
        editable = current is None or current.status == "draft"
        retired = [v.version for v in versions if v.status == "retired"]
        shown = typed if typed is not None else working
        return self.render(  # type: ignore[no-any-return]
            "admin/cunguan/config.html",
            located=located_problems(shown, problems or []),
            line_count=shown.count("\n") + 1,
            stem=stem,
            name=name,
            versions=versions,
            warnings=warnings,
            live=live,
            published=published,
            compared=compared,
            changes=changes,
            current=current,
            text=shown,
            problems=problems or [],
            diff=diff,
            workflows=workflows,
            simulation=simulation,
            run=run,
            editable=editable,
            retired=retired,
            statuses=STATUS_LABELS,
            can_author=self.can_author,
            can_review=self.can_review,
            actor=self.actor.username,
        )

    @staticmethod
    def _workflows(session: Any, stem: str, content: str) -> list[tuple[str, str, int]]:
        """(product, workflow id, version) of the working content, resolved against the published parents."""
        try:
            _, city = publishing.validated(runtime(), session, stem, content)
        except CunguanError:
            return []
        return [(name, p.workflow_id, p.workflow_version) for name, p in sorted(city.products.items())]

    @expose("/<stem>")
    def city(self, stem: str) -> str:
        return self._city_page(self._stem(stem))

    @expose("/workflow/<workflow_id>/<int:version>.svg")
    def graph(self, workflow_id: str, version: int) -> Response:
        from app.state_machine.graph import render_svg

        try:
            definition = runtime().workflow(workflow_id, version)
        except CunguanError:
            abort(404)
        try:
            svg = render_svg(definition)
        except WorkflowError as error:
            abort(503, error.message)
        answer = Response(svg, mimetype="image/svg+xml")
        # served to an <img>: no scripts run there, and this header forbids them when opened directly
        answer.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
        )
        answer.headers["X-Content-Type-Options"] = "nosniff"
        return answer

    # --- ops ----------------------------------------------------------------------------------------------

    @expose("/<stem>/draft", methods=("POST",))
    def save(self, stem: str) -> Response | tuple[str, int]:
        self._require(AUTHOR_ROLES)
        stem = self._stem(stem)
        content = request.form.get("content", "")
        if not content.strip():
            flash("配置内容不能为空", "error")
            return self._back(stem)
        rt = runtime()
        try:
            with rt.db.uow() as uow:
                publishing.validated(rt, uow.session, stem, content)
            version = publishing.save_draft(rt, stem, content, self.actor.username)
        except CityConfigInvalid as invalid:
            return self._city_page(stem, content, invalid.problems), 422
        except CunguanError as error:
            flash(error.message, "error")
            return self._back(stem)
        flash(f"已保存为第 {version.version} 版草稿", "success")
        return self._back(stem)

    @expose("/<stem>/simulate", methods=("POST",))
    def simulate(self, stem: str) -> Response:
        """Queue the simulation for the worker (a full city takes a minute or more) and come straight back: the
        city page shows its progress, then its outcome. One queued or running simulation per city."""
        self._require(AUTHOR_ROLES + REVIEWER_ROLES)  # a reviewer checks a proposed rollback
        stem = self._stem(stem)
        product = request.form.get("product", "").strip() or None
        try:
            run = simulation_jobs.request_simulation(runtime(), stem, product, self.actor.username)
        except CunguanError as error:
            flash(error.message, "error")
            return self._back(stem)
        flash(f"仿真已提交（{run.target}），由后台任务运行，本页显示进度和结果", "success")
        return self._back(stem)

    @expose("/<stem>/submit", methods=("POST",))
    def submit(self, stem: str) -> Response | tuple[str, int]:
        self._require(AUTHOR_ROLES)
        stem = self._stem(stem)
        try:
            version = publishing.submit(runtime(), stem, self.actor.username)
        except CityConfigInvalid as invalid:
            return self._city_page(stem, None, invalid.problems), 422
        except CunguanError as error:
            flash(error.message, "error")
            return self._back(stem)
        flash(f"第 {version.version} 版已提交审核", "success")
        return self._back(stem)

    @expose("/new", methods=("POST",))
    def new_city(self) -> Response:
        """A draft for a new city: a copy of the virtual city's config or of a published city's (its plain diff
        compares with that city), under the given admin code and name; without `status` (go-live is a step)."""
        self._require(AUTHOR_ROLES)
        code, name = request.form.get("admin_code", "").strip(), request.form.get("name", "").strip()
        source_stem = request.form.get("source", VIRTUAL).strip() or VIRTUAL
        if not ADMIN_CODE.match(code) or not name or not STEM.match(source_stem):
            flash("请填写 6 位行政区划代码和城市名称", "error")
            return redirect(url_for(".index"))
        rt = runtime()
        with rt.db.uow() as uow:
            session = uow.session
            exists = session.scalar(select(CityConfigVersion.id).where(CityConfigVersion.city_code == code).limit(1))
            source = SessionCitySource(session, rt.cities.folder)
            template = source.read(source_stem)
            exists = exists is not None or code in source.stems()
        if exists:
            flash(f"城市 {code} 已存在", "error")
            return redirect(url_for(".city", stem=code))
        if template is None:
            flash(f"找不到要复制的配置 {source_stem}", "error")
            return redirect(url_for(".index"))
        data = json.loads(template)
        old_name = data.get("name", "")
        data["admin_code"], data["name"] = code, name
        data.pop("status", None)
        for product in data.get("products", {}).values():
            if isinstance(product, dict) and isinstance(product.get("authority"), str) and old_name:
                product["authority"] = product["authority"].replace(old_name, name)
        content = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
        try:
            publishing.save_draft(rt, code, content, self.actor.username, copied_from=source_stem)
        except CunguanError as error:
            flash(f"未能新建城市：{error.message}", "error")
            return redirect(url_for(".index"))
        flash(f"已由{old_name or source_stem}复制出 {name}（{code}）的草稿", "success")
        return self._back(code)

    # --- reviewers ----------------------------------------------------------------------------------------

    def _review(self, stem: str, approve: bool) -> Response:
        self._require(REVIEWER_ROLES)
        stem = self._stem(stem)
        try:
            version = publishing.review(
                runtime(), stem, self.actor.username, request.form.get("comment", ""), approve=approve
            )
        except CunguanError as error:
            flash(error.message, "error")
            return self._back(stem)
        flash(f"第 {version.version} 版{'已批准' if approve else '已驳回'}", "success")
        return self._back(stem)

    @expose("/<stem>/approve", methods=("POST",))
    def approve(self, stem: str) -> Response:
        return self._review(stem, approve=True)

    @expose("/<stem>/reject", methods=("POST",))
    def reject(self, stem: str) -> Response:
        return self._review(stem, approve=False)

    @expose("/<stem>/publish", methods=("POST",))
    def publish(self, stem: str) -> Response:
        self._require(REVIEWER_ROLES)
        stem = self._stem(stem)
        try:
            version = publishing.publish(runtime(), stem, self.actor.username)
        except CunguanError as error:
            flash(error.message, "error")
            return self._back(stem)
        flash(f"第 {version.version} 版已发布", "success")
        return self._back(stem)

    @expose("/<stem>/rollback", methods=("POST",))
    def rollback(self, stem: str) -> Response:
        self._require(REVIEWER_ROLES)
        stem = self._stem(stem)
        target = request.form.get("to_version", "")
        if not target.isdigit():
            flash("请选择要回滚到的版本", "error")
            return self._back(stem)
        try:
            version = publishing.propose_rollback(
                runtime(), stem, int(target), self.actor.username, request.form.get("comment", "").strip()
            )
        except CunguanError as error:
            flash(error.message, "error")
            return self._back(stem)
        flash(
            f"已提出回滚到第 {target} 版（第 {version.version} 版待审核：须另一位审核人在仿真通过后批准，再发布）",
            "success",
        )
        return self._back(stem)

    def _launch(self, stem: str, live: bool) -> Response:
        self._require(REVIEWER_ROLES)
        stem = self._stem(stem)
        try:
            set_live(runtime(), stem, self.actor.username, live=live)
        except CunguanError as error:
            flash(error.message, "error")
            return self._back(stem)
        flash("已上线：代理人现在可以在本城市新建存管" if live else "已下线：代理人不能再新建本城市的存管", "success")
        return self._back(stem)

    @expose("/<stem>/go-live", methods=("POST",))
    def go_live(self, stem: str) -> Response:
        return self._launch(stem, live=True)

    @expose("/<stem>/take-offline", methods=("POST",))
    def take_offline(self, stem: str) -> Response:
        return self._launch(stem, live=False)
