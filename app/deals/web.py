"""Deal pages: list, the intake form, the deal page with agreement preview, timeline and actions."""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.agreements import resend as agreement_resend
from app.deals import freeze as deal_freeze
from app.deals import intake as intake_forms
from app.deals import live, money_preview
from app.deals import service as deals
from app.platform.errors import CunguanError, NotFound, ValidationError
from app.signing import links as signing_links
from app.web import money_confirm
from app.web.access import ALL_ROLES, current_actor, roles_required, runtime

bp = Blueprint("deals", __name__)


@bp.route("/")
@roles_required(*ALL_ROLES)
def home() -> Response:
    return redirect(url_for("deals.index"))


@bp.route("/deals")
@roles_required(*ALL_ROLES)
def index() -> str:
    search = request.args.get("q", "")[:64]
    rows = deals.list_deals(runtime(), current_actor(), search=search)
    return render_template("deals/index.html", rows=rows, search=search)


def _form_page(
    choice: intake_forms.Choice, values: dict[str, str], errors: dict[str, str], draft_id: int | None
) -> str:
    return render_template(
        "deals/new.html",
        choices=intake_forms.choices(runtime()),
        choice=choice,
        form=intake_forms.form_for(runtime(), choice.city_code, choice.product),
        banks=intake_forms.bank_choices(runtime(), choice.city_code, choice.product),
        drafts=intake_forms.list_drafts(runtime(), current_actor()),
        values=values,
        errors=errors,
        draft_id=draft_id,
    )


def _choice(city_code: str, product: str) -> intake_forms.Choice:
    for choice in intake_forms.choices(runtime()):
        if (choice.city_code, choice.product) == (city_code, product):
            return choice
    raise NotFound("该城市未开通此业务", code="PRODUCT_NOT_OFFERED", details={"city": city_code, "product": product})


def _draft_id(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


@bp.route("/deals/new", methods=["GET"])
@roles_required("agent")
def new() -> str:
    """The generated form of the chosen (city, product), or a draft of one to continue."""
    draft_id = _draft_id(request.args.get("draft"))
    if draft_id is not None:
        draft = intake_forms.load_draft(runtime(), current_actor(), draft_id)
        return _form_page(_choice(draft.city_code, draft.product), draft.values, {}, draft.id)
    available = intake_forms.choices(runtime())
    if not available:
        raise NotFound("暂无开通的城市与业务", code="NO_LIVE_PRODUCT")
    city_code, _, product = request.args.get("choice", "").partition(":")
    chosen = _choice(city_code, product) if product else available[0]
    return _form_page(chosen, {}, {}, None)


@bp.route("/deals/new", methods=["POST"])
@roles_required("agent")
def submit_new() -> str | Response | tuple[str, int]:
    """保存草稿 keeps what was typed; 提交 validates and creates the deal."""
    values = {key: value for key, value in request.form.items() if key not in ("csrf_token", "action", "draft_id")}
    choice = _choice(values.get("city_code", ""), values.get("product", ""))
    draft_id = _draft_id(request.form.get("draft_id"))
    form = intake_forms.form_for(runtime(), choice.city_code, choice.product)
    if request.form.get("action") == "save_draft":
        draft_id = intake_forms.save_draft(runtime(), current_actor(), form, choice.city_code, values, draft_id)
        flash("草稿已保存，可随时在“我的草稿”中继续填写", "info")
        return redirect(url_for("deals.new", draft=draft_id))
    if draft_id is not None:  # another agent's draft id: 404 before anything is created
        intake_forms.load_draft(runtime(), current_actor(), draft_id)
    try:
        deal_id = deals.create_deal(runtime(), current_actor(), choice.city_code, choice.product, values)
    except ValidationError as error:
        flash(error.message, "error")
        return _form_page(choice, values, error.details if isinstance(error.details, dict) else {}, draft_id), 422
    if draft_id is not None:
        intake_forms.delete_draft(runtime(), current_actor(), draft_id)
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
    return render_template(
        "deals/show.html",
        view=view,
        deal=view.deal,
        manual_actions=deals.MANUAL_ACTIONS,
        live=live.deal_status(runtime(), current_actor(), deal_id),
        signing=signing_links.signing_status(runtime(), deal_id, view.deal.product),
        may_reissue=current_actor().role in signing_links.REISSUE_ROLES,
    )


def _confirmation(deal_id: int, event: str, inputs: dict[str, str], carried: dict[str, str]) -> str | None:
    """The confirmation page when this POST would move money without a valid confirmation token of it (nothing
    is done then); None when it may go ahead. `inputs` are bound to the token, `carried` only passed on."""
    rt, actor = runtime(), current_actor()
    state = money_preview.money_state(rt, actor, deal_id, event)
    if state is None:
        return None
    subject = f"deal:{deal_id}"
    token = request.form.get(money_confirm.FIELD, "")
    if money_confirm.valid(token, subject, event, state, inputs):
        return None
    if token:
        flash("确认已失效（存管单状态已变化或已超过 15 分钟），请重新核对后确认", "error")
    return render_template(
        "deals/confirm.html",
        preview=money_preview.preview(rt, actor, deal_id, event, inputs),
        token=money_confirm.issue(subject, event, state, inputs),
        action_url=request.path,
        hidden={**inputs, **carried},
        back_url=url_for("deals.show", deal_id=deal_id),
    )


@bp.route("/deals/<int:deal_id>/status")
@roles_required(*ALL_ROLES)
def status(deal_id: int) -> Response:
    """The deal's live status (JSON) the deal page polls: state, timeline length, what is under way."""
    response = jsonify(live.deal_status(runtime(), current_actor(), deal_id))
    response.headers["Cache-Control"] = "no-store"
    return response


def _act(deal_id: int, operation: str) -> Response | str:
    page = None if operation == "confirm" else _confirmation(deal_id, operation, {}, {})
    if page is not None:
        return page
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
def confirm(deal_id: int) -> Response | str:
    return _act(deal_id, "confirm")


@bp.route("/deals/<int:deal_id>/title-transferred", methods=["POST"])
@roles_required("ops")
def title_transferred(deal_id: int) -> Response | str:
    return _act(deal_id, "title_transferred")


@bp.route("/deals/<int:deal_id>/actions/<event>", methods=["POST"])
@roles_required("ops")
def manual_action(deal_id: int, event: str) -> Response | str:
    """A person's action on a deal (retry a payout, cancel, record an acceptance…), with a reason (audited);
    one that moves money first shows what it would pay and needs that page's confirmation."""
    if event not in deals.MANUAL_ACTIONS:
        abort(404)
    inputs = {name: request.form.get(name, "") for name in deals.MANUAL_ACTIONS[event].inputs}
    reason = request.form.get("reason", "")
    try:
        if not reason.strip():
            raise ValidationError("请填写操作原因", code="REASON_REQUIRED")
        page = _confirmation(deal_id, event, inputs, {"reason": reason})
        if page is not None:
            return page
        deals.manual_action(runtime(), current_actor(), deal_id, event, reason, inputs)
        flash(f"已执行：{deals.MANUAL_ACTIONS[event].label}", "info")
    except CunguanError as error:
        flash(error.message, "error")
    return redirect(url_for("deals.show", deal_id=deal_id))


@bp.route("/deals/<int:deal_id>/freeze", methods=["POST"])
@roles_required(*deal_freeze.FREEZE_ROLES)
def freeze(deal_id: int) -> Response:
    """Freeze a deal (no money leaves it until unfrozen), with a reason (audited)."""
    try:
        deal_freeze.freeze(runtime(), current_actor(), deal_id, request.form.get("reason", ""))
        flash("存管单已冻结，付款将暂停提交银行", "info")
    except CunguanError as error:
        flash(error.message, "error")
    return redirect(url_for("deals.show", deal_id=deal_id))


@bp.route("/deals/<int:deal_id>/unfreeze", methods=["POST"])
@roles_required(*deal_freeze.FREEZE_ROLES)
def unfreeze(deal_id: int) -> Response:
    try:
        deal_freeze.unfreeze(runtime(), current_actor(), deal_id, request.form.get("reason", ""))
        flash("存管单已解冻，暂停的付款将提交银行", "info")
    except CunguanError as error:
        flash(error.message, "error")
    return redirect(url_for("deals.show", deal_id=deal_id))


@bp.route("/deals/<int:deal_id>/resend-signature", methods=["POST"])
@roles_required(*agreement_resend.RESEND_ROLES)
def resend_signature(deal_id: int) -> Response:
    """重新发起签署: re-issue the bank's countersigning of the signed agreement, with a reason (audited)."""
    try:
        agreement_resend.resend(runtime(), current_actor(), deal_id, request.form.get("reason", ""))
        flash("已重新发起签署，银行签章后即加盖在协议上", "info")
    except CunguanError as error:
        flash(error.message, "error")
    return redirect(url_for("deals.show", deal_id=deal_id))


@bp.route("/deals/<int:deal_id>/signing-links", methods=["POST"])
@roles_required(*signing_links.REISSUE_ROLES)
def reissue_signing_links(deal_id: int) -> Response:
    """重新发送签署链接: fresh links by SMS to the parties who have not signed (the old ones stop working)."""
    try:
        sent = signing_links.reissue(runtime(), current_actor(), deal_id)
    except CunguanError as error:
        flash(error.message, "error")
    else:
        flash(f"已向 {sent} 位当事人重新发送签署链接", "success")
    return redirect(url_for("deals.show", deal_id=deal_id))


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
