"""Deal pages: list, the intake form, the deal page with agreement preview, timeline and actions."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.domain.forms.resale import FIELDS, SECTIONS
from app.errors import CunguanError, ValidationError
from app.services import deals
from app.web.access import ALL_ROLES, current_actor, roles_required, runtime

bp = Blueprint("deals", __name__)

DEFAULT_CITY = "110000"
PRODUCT = "resale_escrow"


@bp.route("/")
@roles_required(*ALL_ROLES)
def home() -> Response:
    return redirect(url_for("deals.index"))


@bp.route("/deals")
@roles_required(*ALL_ROLES)
def index() -> str:
    return render_template("deals/index.html", rows=deals.list_deals(runtime(), current_actor()))


@bp.route("/deals/new", methods=["GET", "POST"])
@roles_required("agent")
def new() -> str | Response | tuple[str, int]:
    cities = [city for city in runtime().cities.live_cities() if PRODUCT in city.products]
    if request.method == "GET":
        return render_template("deals/new.html", fields=FIELDS, sections=SECTIONS, cities=cities, values={}, errors={})
    values = request.form.to_dict()
    try:
        deal_id = deals.create_deal(runtime(), current_actor(), values.get("city_code", DEFAULT_CITY), PRODUCT, values)
    except ValidationError as error:
        errors = error.details if isinstance(error.details, dict) else {}
        flash(error.message, "error")
        page = render_template(
            "deals/new.html", fields=FIELDS, sections=SECTIONS, cities=cities, values=values, errors=errors
        )
        return page, 422
    flash("存管单已创建，请核对协议后确认", "info")
    return redirect(url_for("deals.show", deal_id=deal_id))


def _wants_json() -> bool:
    return request.args.get("format") == "json" or request.accept_mimetypes.best == "application/json"


@bp.route("/deals/<int:deal_id>")
@roles_required(*ALL_ROLES)
def show(deal_id: int) -> str | Response:
    view = deals.deal_view(runtime(), current_actor(), deal_id)
    if _wants_json():
        return jsonify(deals.deal_payload(view))
    return render_template("deals/show.html", view=view, deal=view.deal)


def _act(deal_id: int, operation: str) -> Response:
    try:
        if operation == "confirm":
            deals.confirm_agreement(runtime(), current_actor(), deal_id)
            flash("协议已签署，已向银行申请开立存管虚户", "info")
        else:
            deals.record_title_transferred(runtime(), current_actor(), deal_id)
            flash("已记录过户完成，已向银行发起放款", "info")
    except CunguanError as error:
        flash(error.message, "error")
    return redirect(url_for("deals.show", deal_id=deal_id))


@bp.route("/deals/<int:deal_id>/confirm", methods=["POST"])
@roles_required("agent")
def confirm(deal_id: int) -> Response:
    return _act(deal_id, "confirm")


@bp.route("/deals/<int:deal_id>/title-transferred", methods=["POST"])
@roles_required("ops")
def title_transferred(deal_id: int) -> Response:
    return _act(deal_id, "title_transferred")


@bp.route("/deals/<int:deal_id>/agreement.html")
@roles_required(*ALL_ROLES)
def agreement_html(deal_id: int) -> Response:
    """The agreement as HTML, for the preview frame on the deal page (framed by our own pages only)."""
    response = make_response(deals.agreement_html(runtime(), current_actor(), deal_id))
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
    )
    return response


@bp.route("/deals/<int:deal_id>/agreement.pdf")
@roles_required(*ALL_ROLES)
def agreement_pdf(deal_id: int) -> Response:
    deal_no, pdf = deals.agreement_pdf(runtime(), current_actor(), deal_id)
    response = make_response(pdf)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="agreement-{deal_no}.pdf"'
    return response
