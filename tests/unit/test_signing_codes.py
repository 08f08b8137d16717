"""Signing links and one-time codes (app/signing/codes.py): hashes only, expiry, attempts, single use, rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.signing import codes

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
FRESH = codes.CodeState(None, None, 0, 0, None)


def test_tokens_are_unguessable_and_only_their_hash_is_kept() -> None:
    first, second = codes.new_token(), codes.new_token()
    assert first != second and len(first) >= 43  # 32 random bytes, URL-safe
    assert codes.token_hash(first) == codes.token_hash(first) != codes.token_hash(second)
    assert first not in codes.token_hash(first) and len(codes.token_hash(first)) == 64


def test_a_code_has_six_digits_and_is_stored_keyed_with_the_link() -> None:
    code = codes.new_code()
    assert len(code) == 6 and code.isdigit()
    state = codes.issue(FRESH, "token-a", code, NOW)
    assert state.code_hash == codes.code_hash("token-a", code) != codes.code_hash("token-b", code)
    assert code not in (state.code_hash or "") and state.expires_at == NOW + timedelta(minutes=5)


def test_the_right_code_passes_once() -> None:
    state = codes.issue(FRESH, "t", "123456", NOW)
    after, refused = codes.check(state, "t", " 123456 ", NOW + timedelta(minutes=4))
    assert refused is None and after.code_hash is None
    again, refused = codes.check(after, "t", "123456", NOW + timedelta(minutes=4))
    assert refused == "请先获取验证码" and again.code_hash is None


def test_a_code_expires_after_five_minutes() -> None:
    state = codes.issue(FRESH, "t", "123456", NOW)
    _, refused = codes.check(state, "t", "123456", NOW + timedelta(minutes=5))
    assert refused == "验证码已过期，请重新获取"


def test_five_wrong_entries_end_the_code_even_for_the_right_one_after() -> None:
    state = codes.issue(FRESH, "t", "123456", NOW)
    messages = []
    for _ in range(5):
        state, refused = codes.check(state, "t", "000000", NOW)
        messages.append(refused)
    assert messages[0] == "验证码不正确，还可尝试 4 次" and messages[-1] == "验证码错误次数过多，请重新获取"
    _, refused = codes.check(state, "t", "123456", NOW)
    assert refused == "验证码错误次数过多，请重新获取"
    fresh = codes.issue(state, "t", "654321", NOW + timedelta(minutes=2))
    assert fresh.attempts == 0 and codes.check(fresh, "t", "654321", NOW + timedelta(minutes=2))[1] is None


def test_sending_is_rate_limited_per_minute_and_per_link() -> None:
    assert codes.may_send(FRESH, NOW) is None
    state = codes.issue(FRESH, "t", "111111", NOW)
    assert codes.may_send(state, NOW + timedelta(seconds=30)) == "验证码发送过于频繁，请 31 秒后再试"
    assert codes.may_send(state, NOW + timedelta(seconds=60)) is None
    for minute in range(1, 5):
        state = codes.issue(state, "t", "111111", NOW + timedelta(minutes=minute))
    assert state.sent == 5
    assert codes.may_send(state, NOW + timedelta(hours=1)) == "验证码发送次数已达上限，请联系经纪人重新发起签署"
