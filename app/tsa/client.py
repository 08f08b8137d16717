"""The platform's side of RFC 3161: ask a TSA (CUNGUAN_TSA_URL; in tests the `flask tsa serve` process) to stamp an
SM3 digest and get back the token, checked before it is used (granted, same imprint and nonce, signature valid)."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from app.platform.errors import CryptoError
from app.tsa import protocol
from app.tsa.tokens import check_token_digest

Timestamper = Callable[[bytes], bytes]  # SM3 digest -> DER token (a CMS ContentInfo)
_RETRY_PAUSE_S = 0.2


class TsaUnavailable(CryptoError):
    """The TSA could not be reached or answered garbage, after the retries."""


def timestamp(
    url: str,
    data_digest: bytes,
    *,
    timeout_s: float = 5.0,
    retries: int = 2,
    policy: str | None = None,
    session: requests.Session | None = None,
) -> bytes:
    """The DER TimeStampToken of `data_digest` (32 bytes, SM3). Connection failures, timeouts and 5xx answers
    are tried again `retries` times (TsaUnavailable after that); a refusal raises CryptoError TSA_REFUSED."""
    nonce = protocol.new_nonce()
    query = protocol.build_request(data_digest, nonce=nonce, policy=policy)
    http = session or requests
    failure = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(_RETRY_PAUSE_S * attempt)
        try:
            answer = http.post(
                url, data=query, headers={"Content-Type": protocol.QUERY_CONTENT_TYPE}, timeout=timeout_s
            )
        except requests.RequestException as error:
            failure = f"{type(error).__name__}: {error}"
            continue
        if answer.status_code >= 500:
            failure = f"HTTP {answer.status_code}"
            continue
        content_type = answer.headers.get("Content-Type", "").split(";")[0].strip()
        if answer.status_code != 200 or content_type != protocol.REPLY_CONTENT_TYPE:
            raise TsaUnavailable(
                "时间戳服务的应答不是 RFC 3161 应答", code="TSA_BAD_REPLY", details={"status": answer.status_code}
            )
        return _accepted(answer.content, data_digest, nonce)
    raise TsaUnavailable("时间戳服务无法访问", code="TSA_UNAVAILABLE", details={"url": url, "error": failure})


def _accepted(reply: bytes, digest: bytes, nonce: int) -> bytes:
    status, text, token = protocol.read_reply(reply)
    if status not in ("granted", "granted_with_mods") or token is None:
        raise CryptoError(f"时间戳服务拒绝了请求：{text or status}", code="TSA_REFUSED", details={"status": status})
    if protocol.token_info(token)["nonce"].native != nonce:
        raise CryptoError("时间戳应答的随机数与请求不同", code="TSA_BAD_REPLY")
    check = check_token_digest(token, digest)
    if not check.valid:
        raise CryptoError("时间戳令牌未通过验证", code="TSA_BAD_TOKEN", details=check.errors)
    return token.dump()
