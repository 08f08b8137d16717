"""A deal's evidence pack for download (ops, auditor; audited) and /evidence/verify: an uploaded pack checked
offline against this instance's certificates, the report shown (any logged-in role); never a 500 on garbage."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from app.evidence import EVIDENCE_ROLES
from app.evidence.archive import MAX_PACK_BYTES
from app.evidence.build import build_pack
from app.evidence.cli import instance_trust
from app.evidence.verify import PackReport, verify_pack
from app.pki.store import crl_path
from app.platform.errors import NotFound
from app.web.access import ALL_ROLES, roles_required, runtime

bp = Blueprint("evidence", __name__, url_prefix="/evidence")
MAX_UPLOAD_LABEL = f"{MAX_PACK_BYTES // (1024 * 1024)} MB"


@bp.route("/deals/<int:deal_id>.zip")
@roles_required(*EVIDENCE_ROLES)
def download(deal_id: int) -> Response:
    rt = runtime()
    try:
        pack = build_pack(rt, deal_id, builder=current_user.actor.label)
    except NotFound:
        abort(404)
    response = Response(pack, mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="evidence-deal-{deal_id}.zip"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(
    report: PackReport | None = None, filename: str | None = None, error: str | None = None, status: int = 200
) -> tuple[str, int]:
    html = render_template(
        "evidence/verify.html", report=report, filename=filename, error=error, max_upload=MAX_UPLOAD_LABEL
    )
    return html, status


@bp.route("/verify")
@roles_required(*ALL_ROLES)
def verify_form() -> tuple[str, int]:
    return _page()


@bp.route("/verify", methods=["POST"])
@roles_required(*ALL_ROLES)
def verify_upload() -> tuple[str, int]:
    request.max_content_length = MAX_PACK_BYTES + 64 * 1024
    too_large = f"文件过大，不能超过 {MAX_UPLOAD_LABEL}"
    try:
        upload = request.files.get("pack")
    except RequestEntityTooLarge:
        return _page(error=too_large, status=413)
    if upload is None or not upload.filename:
        return _page(error="请选择要核验的证据包（ZIP）", status=400)
    content = upload.read(MAX_PACK_BYTES + 1)
    if len(content) > MAX_PACK_BYTES:
        return _page(error=too_large, status=413)
    if not content.startswith(b"PK"):
        return _page(filename=upload.filename, error="这不是 ZIP 证据包", status=400)
    rt = runtime()
    current_crl = crl_path(rt.keys.folder)
    crls = [current_crl.read_bytes()] if current_crl.is_file() else []
    report = verify_pack(content, instance_trust(rt.keys.folder), rt.trusted_tsa_certificates(), crls)
    return _page(report, filename=upload.filename)
