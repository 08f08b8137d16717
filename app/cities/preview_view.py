"""城市配置 · 预览: the version under work as agents and parties would see it (`app.cities.draft_preview`).

预览经纪人表单 shows the intake form generated from the draft in the agents' own page (framed at phone and desktop
width), read-only: it has no action and its buttons are disabled, so nothing is created. 预览协议 shows the agreement
of every product the draft changes, rendered with a sample deal, and offers it as an unsigned PDF watermarked
样本/预览. Ops and reviewers only; a draft that does not pass its checks is refused with its problems (422)."""

from __future__ import annotations

from flask import abort, make_response, render_template, request
from flask_admin import expose
from werkzeug.wrappers import Response

from app.cities import draft_preview
from app.domain.config_versions import AUTHOR_ROLES, REVIEWER_ROLES
from app.web.access import runtime

PREVIEW_ROLES = AUTHOR_ROLES + REVIEWER_ROLES
# the frames are our own pages, shown only inside our own pages
FRAME_CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'"
AGREEMENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


def _framed(body: str | bytes, policy: str) -> Response:
    response = make_response(body)
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Content-Security-Policy"] = policy
    return response


class PreviewRoutes:
    """Mixed into `ConfigsView` (its `_stem`, `_require`, `render`)."""

    def _draft(self, stem: str) -> draft_preview.Draft | tuple[str, int]:
        """The checked draft, or the page that lists why it cannot be previewed (422)."""
        self._require(PREVIEW_ROLES)  # type: ignore[attr-defined]
        try:
            return draft_preview.load_draft(runtime(), stem)
        except draft_preview.DraftInvalid as invalid:
            return self._refused(stem, invalid)

    def _refused(self, stem: str, invalid: draft_preview.DraftInvalid) -> tuple[str, int]:
        page = self.render(  # type: ignore[attr-defined]
            "admin/cunguan/config_preview.html",
            mode="invalid",
            stem=stem,
            message=invalid.message,
            problems=invalid.details if isinstance(invalid.details, list) else [],
            draft=None,
        )
        return page, 422

    @expose("/<stem>/preview/form")
    def preview_form(self, stem: str) -> str | tuple[str, int]:
        stem = self._stem(stem)  # type: ignore[attr-defined]
        draft = self._draft(stem)
        if not isinstance(draft, draft_preview.Draft):
            return draft
        products = list(draft.changed or draft.city.products)
        chosen = request.args.get("product") or (products[0] if products else "")
        if chosen and chosen not in draft.city.products:
            abort(404)
        return self.render(  # type: ignore[attr-defined,no-any-return]
            "admin/cunguan/config_preview.html",
            mode="form",
            stem=stem,
            draft=draft,
            names=draft.product_names(runtime()),
            chosen=chosen,
        )

    @expose("/<stem>/preview/form/<product>/frame")
    def preview_form_frame(self, stem: str, product: str) -> Response | tuple[str, int]:
        stem = self._stem(stem)  # type: ignore[attr-defined]
        draft = self._draft(stem)
        if not isinstance(draft, draft_preview.Draft):
            return draft
        rt = runtime()
        form, banks = draft_preview.intake_form(rt, draft, product)
        page = render_template(
            "deals/preview_form.html",
            title=f"{draft.city.name} · {rt.products.get(product).name}",
            draft=draft,
            form=form,
            banks=banks,
            values={},
            errors={},
            preview=True,
        )
        return _framed(page, FRAME_CSP)

    @expose("/<stem>/preview/agreement")
    def preview_agreement(self, stem: str) -> str | tuple[str, int]:
        stem = self._stem(stem)  # type: ignore[attr-defined]
        draft = self._draft(stem)
        if not isinstance(draft, draft_preview.Draft):
            return draft
        return self.render(  # type: ignore[attr-defined,no-any-return]
            "admin/cunguan/config_preview.html",
            mode="agreement",
            stem=stem,
            draft=draft,
            names=draft.product_names(runtime()),
        )

    @expose("/<stem>/preview/agreement/<product>.html")
    def preview_agreement_html(self, stem: str, product: str) -> Response | tuple[str, int]:
        stem = self._stem(stem)  # type: ignore[attr-defined]
        draft = self._draft(stem)
        if not isinstance(draft, draft_preview.Draft):
            return draft
        try:
            html = draft_preview.agreement_html(runtime(), draft, product)
        except draft_preview.DraftInvalid as invalid:
            return self._refused(stem, invalid)
        return _framed(html, AGREEMENT_CSP)

    @expose("/<stem>/preview/agreement/<product>.pdf")
    def preview_agreement_pdf(self, stem: str, product: str) -> Response | tuple[str, int]:
        stem = self._stem(stem)  # type: ignore[attr-defined]
        draft = self._draft(stem)
        if not isinstance(draft, draft_preview.Draft):
            return draft
        try:
            pdf = draft_preview.agreement_pdf(runtime(), draft, product)
        except draft_preview.DraftInvalid as invalid:
            return self._refused(stem, invalid)
        response = make_response(pdf)
        response.headers["Content-Type"] = "application/pdf"
        name = f"preview-{stem}-v{draft.version}-{product}.pdf"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
