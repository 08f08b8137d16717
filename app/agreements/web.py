"""/agreements/verify: upload an agreement PDF, see every signature in it checked (any logged-in role)."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.agreements.service import verify_agreement_pdf
from app.pdf.verify import PdfSignatureReport
from app.web.access import ALL_ROLES, roles_required, runtime

bp = Blueprint("agreements", __name__, url_prefix="/agreements")
MAX_UPLOAD_BYTES = 8 * 1024 * 1024  # a signed four-page agreement with embedded CJK fonts is under 1 MiB
MAX_UPLOAD_LABEL = "8 MB"


def _page(
    reports: list[PdfSignatureReport] | None = None,
    filename: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    return (
        render_template(
            "agreements/verify.html",
            reports=reports,
            all_valid=bool(reports) and all(report.valid for report in reports),
            filename=filename,
            error=error,
            max_upload=MAX_UPLOAD_LABEL,
        ),
        status,
    )


@bp.route("/verify")
@roles_required(*ALL_ROLES)
def verify_form() -> tuple[str, int]:
    return _page()


@bp.route("/verify", methods=["POST"])
@roles_required(*ALL_ROLES)
def verify_upload() -> tuple[str, int]:
    request.max_content_length = MAX_UPLOAD_BYTES
    try:
        upload = request.files.get("pdf")
    except RequestEntityTooLarge:
        return _page(error=f"文件过大，不能超过 {MAX_UPLOAD_LABEL}", status=413)
    if upload is None or not upload.filename:
        return _page(error="请选择要验证的 PDF 文件", status=400)
    content = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        return _page(error=f"文件过大，不能超过 {MAX_UPLOAD_LABEL}", status=413)
    if not content.startswith(b"%PDF-"):
        return _page(filename=upload.filename, error="这不是 PDF 文件", status=400)
    return _page(verify_agreement_pdf(runtime(), content), filename=upload.filename)
