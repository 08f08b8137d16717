"""Bank protocol v1: signing and verification of HTTP requests, shared by the platform and the banks.

A request carries three headers `<P>-Timestamp`, `<P>-Nonce` and `<P>-Signature`, where `<P>` is
`X-Bank` when a bank calls the platform and `X-Platform` when the platform calls a bank. The
signature is base64 of the DER SM2 signature (SM3 digest, default user id) over
`timestamp + "\\n" + nonce + "\\n" + raw body`. Nonce uniqueness is the receiver's job: it passes
`remember_nonce` (backed by its own store) to `verify_request`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from app.crypto import sm2_sign, sm2_verify
from app.platform.errors import CunguanError, SignatureError

BANK_PREFIX = "X-Bank"
PLATFORM_PREFIX = "X-Platform"
MAX_BODY_BYTES = 64 * 1024
TIMESTAMP_TOLERANCE_S = 300
NONCE_PATTERN = re.compile(r"^[A-Za-z0-9-]{16,64}$")
TIMESTAMP_PATTERN = re.compile(r"^[0-9]{1,12}$")
_MAX_SIGNATURE_HEADER_CHARS = 256  # a DER SM2 signature is at most 72 bytes, 96 base64 chars


class MissingSignatureHeaders(SignatureError):
    """A signature header is absent or ill-formed: the request counts as unsigned (401 BAD_SIGNATURE)."""


class BadSignature(SignatureError):
    """The signature does not verify with the sender's public key."""


class StaleTimestamp(SignatureError):
    code = "STALE_TIMESTAMP"


class ReplayedNonce(SignatureError):
    code = "REPLAYED_NONCE"


class BodyTooLarge(CunguanError):
    code = "BODY_TOO_LARGE"
    http_status = 413


@dataclass(frozen=True)
class SignatureHeaders:
    """The header names for one direction, e.g. `SignatureHeaders.for_prefix("X-Bank")`."""

    timestamp: str
    nonce: str
    signature: str

    @classmethod
    def for_prefix(cls, prefix: str) -> SignatureHeaders:
        if prefix not in (BANK_PREFIX, PLATFORM_PREFIX):
            raise ValueError(f"unknown signature header prefix {prefix!r}")
        return cls(f"{prefix}-Timestamp", f"{prefix}-Nonce", f"{prefix}-Signature")


@dataclass(frozen=True)
class SignedRequest:
    """What a verified request proved: when it was signed and with which nonce (`signature`: the signature header
    as received, base64, kept with the stored body so that the bank's signature can be checked again later)."""

    timestamp: int
    nonce: str
    signature: str = ""

    def evidence(self) -> dict[str, str]:
        """The three header values as received: with the raw body and the sender's certificate, enough to check the
        signature again (`signing_payload`)."""
        return {"timestamp": str(self.timestamp), "nonce": self.nonce, "signature": self.signature}


class HeaderSource(Protocol):
    """Anything with `items()` of header name/value pairs: dict, werkzeug Headers, email.message.Message."""

    def items(self) -> Iterable[tuple[str, str]]: ...


def signing_payload(timestamp: str, nonce: str, body: bytes) -> bytes:
    """The exact bytes that are signed: `timestamp \\n nonce \\n body`."""
    return timestamp.encode("ascii") + b"\n" + nonce.encode("ascii") + b"\n" + body


def new_nonce() -> str:
    return secrets.token_hex(16)


def encode_json(payload: dict[str, Any]) -> bytes:
    """Canonical body encoding used by our senders (the signature covers the bytes, whatever they are)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def sign_headers(
    prefix: str, private_key_pem: bytes, body: bytes, *, now: float | None = None, nonce: str | None = None
) -> dict[str, str]:
    """The three signature headers for `body`, signed now with a fresh nonce (both injectable for tests)."""
    names = SignatureHeaders.for_prefix(prefix)
    timestamp = str(int(time.time() if now is None else now))
    nonce = new_nonce() if nonce is None else nonce
    if NONCE_PATTERN.match(nonce) is None:
        raise ValueError("nonce must be 16-64 characters of [A-Za-z0-9-]")
    signature = sm2_sign(private_key_pem, signing_payload(timestamp, nonce, body))
    return {
        names.timestamp: timestamp,
        names.nonce: nonce,
        names.signature: base64.b64encode(signature).decode("ascii"),
    }


def verify_request(
    prefix: str,
    public_key_pem: bytes,
    headers: HeaderSource,
    body: bytes,
    *,
    now: float | None = None,
    remember_nonce: Callable[[SignedRequest], bool] | None = None,
) -> SignedRequest:
    """Check size, headers, signature, then freshness; finally `remember_nonce` (False means seen before).

    Raises BodyTooLarge (413), MissingSignatureHeaders / BadSignature (401 BAD_SIGNATURE),
    StaleTimestamp (401 STALE_TIMESTAMP) or ReplayedNonce (401 REPLAYED_NONCE).
    """
    if len(body) > MAX_BODY_BYTES:
        raise BodyTooLarge("请求体过大", details={"max_bytes": MAX_BODY_BYTES})
    names = SignatureHeaders.for_prefix(prefix)
    timestamp, nonce, signature = _read_headers(names, headers)
    if not sm2_verify(public_key_pem, signing_payload(timestamp, nonce, body), signature):
        raise BadSignature("签名验证失败")
    signed = SignedRequest(timestamp=int(timestamp), nonce=nonce, signature=base64.b64encode(signature).decode("ascii"))
    current = time.time() if now is None else now
    if abs(current - signed.timestamp) > TIMESTAMP_TOLERANCE_S:
        raise StaleTimestamp(
            "请求时间戳超出允许范围（±300 秒）", details={"timestamp": signed.timestamp, "now": int(current)}
        )
    if remember_nonce is not None and not remember_nonce(signed):
        raise ReplayedNonce("请求随机数（nonce）已使用过，疑似重放", details={"nonce": nonce})
    return signed


def _read_headers(names: SignatureHeaders, headers: HeaderSource) -> tuple[str, str, bytes]:
    lowered = {name.lower(): value for name, value in headers.items()}
    values = {}
    for name in (names.timestamp, names.nonce, names.signature):
        value = lowered.get(name.lower())
        if not value:
            raise MissingSignatureHeaders(f"缺少签名请求头 {name}", details={"header": name})
        values[name] = value.strip()
    timestamp, nonce, signature_text = values[names.timestamp], values[names.nonce], values[names.signature]
    if TIMESTAMP_PATTERN.match(timestamp) is None:
        raise MissingSignatureHeaders(f"{names.timestamp} 必须是 Unix 秒数", details={"header": names.timestamp})
    if NONCE_PATTERN.match(nonce) is None:
        raise MissingSignatureHeaders(
            f"{names.nonce} 必须是 16–64 位字母、数字或连字符", details={"header": names.nonce}
        )
    return timestamp, nonce, _decode_signature(names.signature, signature_text)


def _decode_signature(header: str, text: str) -> bytes:
    if len(text) > _MAX_SIGNATURE_HEADER_CHARS:
        raise MissingSignatureHeaders(f"{header} 过长", details={"header": header})
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as error:
        raise MissingSignatureHeaders(f"{header} 不是有效的 Base64", details={"header": header}) from error
