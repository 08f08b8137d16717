"""Bank callback endpoint (public, but nothing unverified is processed)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from app.bank_inbox import receive as bank_callbacks
from app.bank_inbox.alerts import CallbackRefused
from app.bank_inbox.store import INBOX_MODE, processing_mode
from app.banks.protocol import BANK_PREFIX, MAX_BODY_BYTES, ReplayedNonce, verify_request
from app.platform.errors import Busy, CunguanError, NotFound
from app.platform.extensions import csrf
from app.web.access import runtime

bp = Blueprint("bank_callbacks", __name__)


def _answer(code: str, status: int, **extra: object) -> tuple[Response, int]:
    return jsonify({"code": code, **extra}), status


@bp.route("/api/banks/<bank_code>/notifications", methods=["POST"])
@csrf.exempt
def notify(bank_code: str) -> tuple[Response, int]:
    rt = runtime()
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _answer("BODY_TOO_LARGE", 413, message="请求体过大")
    raw_body = request.get_data(cache=False)
    try:
        rt.bank(bank_code)
        public_key = rt.keys.bank_public_key_pem(bank_code)
        # freshness is judged by the wall clock, not the business clock (tests and simulations move that one)
        signed = verify_request(BANK_PREFIX, public_key, request.headers, raw_body)
        body = bank_callbacks.parse_notification(raw_body)
    except NotFound as error:
        return _answer(error.code, 404, message=error.message)
    except CunguanError as error:
        status = error.http_status if error.http_status in (401, 413) else 400
        code = error.code if status != 400 else "MALFORMED"
        return _answer(code, status, message=error.message, errors=error.details)
    try:
        if processing_mode() == INBOX_MODE:  # 200 = stored; workers process it
            result = bank_callbacks.acknowledge(rt, bank_code, raw_body, body, signed.nonce, signed.evidence())
        else:  # 200 = stored and processed
            result = bank_callbacks.receive(rt, bank_code, raw_body, body, signed.nonce, signed.evidence())
    except ReplayedNonce as error:
        return _answer(error.code, 401, message=error.message)
    except Busy as error:  # contention the retries did not settle: the bank resends
        return _answer(error.code, 409, message=error.message)
    except CallbackRefused as error:  # verified, but it contradicts our records: an alert kept for review
        return _answer(error.code, 409, message=error.message, errors=error.details)
    except CunguanError as error:  # verified and stored raw, but it contradicts our records: kept for review
        return _answer("CONFLICT", 409, message=error.message, errors=error.details)
    return _answer(result, 200)


@bp.route("/api/banks/<bank_code>/ping", methods=["POST"])
@csrf.exempt
def ping(bank_code: str) -> tuple[Response, int]:
    """A bank checks that it reaches us and that we accept its signature; nothing is stored or processed
    (so no nonce is kept: a replayed ping changes nothing)."""
    rt = runtime()
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _answer("BODY_TOO_LARGE", 413, message="请求体过大")
    try:
        rt.bank(bank_code)
        public_key = rt.keys.bank_public_key_pem(bank_code)
        verify_request(BANK_PREFIX, public_key, request.headers, request.get_data())
    except NotFound as error:
        return _answer(error.code, 404, message=error.message)
    except CunguanError as error:
        return _answer(error.code, error.http_status if error.http_status in (401, 413) else 400, message=error.message)
    return _answer("PONG", 200)
