"""Signing links and one-time codes: the rules, without a database.

A link's token is 32 random bytes (URL-safe text); only its SM3 is stored, so the database cannot give out a
working link. A one-time code is 6 digits, valid 5 minutes, 5 wrong entries end it; it is stored as HMAC-SM3 keyed
with the link's token, so the stored value is useless without the link. A new code may be sent at most once a
minute and 5 times per link.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.crypto import get_provider, sm3

TOKEN_BYTES = 32
LINK_VALID = timedelta(days=7)
CODE_DIGITS = 6
CODE_VALID = timedelta(minutes=5)
CODE_ATTEMPTS = 5
CODE_INTERVAL = timedelta(seconds=60)
CODES_PER_LINK = 5
CHECKS_PER_LINK = 5  # wrong name / ID number entries before the link is locked


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return sm3(token.encode()).hex()


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(token: str, code: str) -> str:
    return get_provider().hmac_sm3(token.encode(), code.encode()).hex()


@dataclass
class CodeState:
    """What a signing request keeps of its current code."""

    code_hash: str | None
    expires_at: datetime | None
    attempts: int
    sent: int
    last_sent_at: datetime | None


def may_send(state: CodeState, now: datetime) -> str | None:
    """Why a new code may not be sent now (Chinese), or None."""
    if state.sent >= CODES_PER_LINK:
        return "验证码发送次数已达上限，请联系经纪人重新发起签署"
    if state.last_sent_at is not None and now - state.last_sent_at < CODE_INTERVAL:
        wait = int((CODE_INTERVAL - (now - state.last_sent_at)).total_seconds()) + 1
        return f"验证码发送过于频繁，请 {wait} 秒后再试"
    return None


def issue(state: CodeState, token: str, code: str, now: datetime) -> CodeState:
    return CodeState(code_hash(token, code), now + CODE_VALID, 0, state.sent + 1, now)


def check(state: CodeState, token: str, entered: str, now: datetime) -> tuple[CodeState, str | None]:
    """(the state after this entry, why it is refused in Chinese or None); a right code is used up."""
    if state.code_hash is None or state.expires_at is None:
        return state, "请先获取验证码"
    if now >= state.expires_at:
        return state, "验证码已过期，请重新获取"
    if state.attempts >= CODE_ATTEMPTS:
        return state, "验证码错误次数过多，请重新获取"
    if not hmac.compare_digest(code_hash(token, entered.strip()), state.code_hash):
        used = state.attempts + 1
        left = CODE_ATTEMPTS - used
        after = CodeState(state.code_hash, state.expires_at, used, state.sent, state.last_sent_at)
        return after, (f"验证码不正确，还可尝试 {left} 次" if left else "验证码错误次数过多，请重新获取")
    return CodeState(None, None, 0, state.sent, state.last_sent_at), None
