"""The confirmation token of a money-moving step: issued with the confirmation page, required by the POST
that moves the money. It names the person, the thing (deal or payout), the action, the state it was shown
in and the inputs typed, signed with the app's secret key and valid for 15 minutes; a token of another
person, deal, action, state or input, or an old one, is refused (CSRF is checked as on every form)."""

from __future__ import annotations

import hashlib
import json

from flask import current_app
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

FIELD = "confirm_token"
MAX_AGE_SECONDS = 15 * 60
SALT = "cunguan.money-confirmation"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=SALT)


def _claims(subject: str, action: str, state: str, inputs: dict[str, str]) -> dict[str, str]:
    typed = hashlib.sha256(json.dumps(inputs, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return {"who": str(current_user.id), "subject": subject, "action": action, "state": state, "inputs": typed}


def issue(subject: str, action: str, state: str, inputs: dict[str, str]) -> str:
    return str(_serializer().dumps(_claims(subject, action, state, inputs)))


def valid(token: str, subject: str, action: str, state: str, inputs: dict[str, str]) -> bool:
    """Whether `token` confirms exactly this step, by this person, recently."""
    if not token:
        return False
    try:
        claims = _serializer().loads(token, max_age=MAX_AGE_SECONDS)
    except BadSignature:  # also SignatureExpired
        return False
    return bool(claims == _claims(subject, action, state, inputs))
