"""Platform-side bank client: the `BankGateway` interface and its HTTP implementation (bank protocol v1).

Failures are typed so that callers know what is safe:
- `BankUnavailable`: nothing reached the bank (connection refused, DNS, connect timeout) - resend freely;
- `BankOutcomeUnknown`: the request was sent but no usable answer came back (read timeout, 5xx,
  garbled answer) - query the bank before doing anything else, never resend blindly;
- `BankRejected`: the bank answered 4xx with its own code - not retryable as is.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any, Literal, Protocol, get_args
from urllib.parse import quote

import requests
from urllib3.exceptions import ConnectTimeoutError

from app.banks.protocol import PLATFORM_PREFIX, encode_json, sign_headers
from app.domain.statements import Statement
from app.platform.errors import BankError, ConfigError

PayoutState = Literal["processing", "succeeded", "failed"]
_PAYOUT_STATES: tuple[str, ...] = get_args(PayoutState)
OpeningState = Literal["opening", "open"]
_OPENING_STATES: tuple[str, ...] = get_args(OpeningState)


class BankUnavailable(BankError):
    code = "BANK_UNAVAILABLE"
    http_status = 503


class BankOutcomeUnknown(BankError):
    code = "BANK_OUTCOME_UNKNOWN"
    http_status = 504


class BankRejected(BankError):
    """The bank refused the request; `code` is the bank's own code (e.g. CONFLICT, NOT_FOUND, MALFORMED)."""

    code = "BANK_REJECTED"


class BankRateLimited(BankRejected):
    """HTTP 429: over the bank's limit; nothing was done. Try again after `retry_after_s`."""

    def __init__(self, message: str, *, code: str, retry_after_s: float, details: dict[str, Any]) -> None:
        super().__init__(message, code=code, details={**details, "retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class DesignatedPayer:
    """Only money from this payer belongs to the deal; the bank flags arrivals from anyone else."""

    payer_name: str
    payer_account: str


@dataclass(frozen=True)
class PayoutRequest:
    payout_id: str
    account_no: str
    amount_fen: int
    payee_name: str
    payee_account: str
    notify_url: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount_fen, int) or isinstance(self.amount_fen, bool) or self.amount_fen <= 0:
            raise ValueError(f"amount_fen must be a positive integer, got {self.amount_fen!r}")


@dataclass(frozen=True)
class PayoutStatus:
    payout_id: str
    status: PayoutState
    bank_reference: str
    failure_reason: str | None


@dataclass(frozen=True)
class AccountOpening:
    request_id: str
    status: OpeningState
    account_no: str | None  # set once open
    account_name: str


@dataclass(frozen=True)
class BankReceipt:
    """A bank's answer kept as proof (a freeze or unfreeze receipt): the body as sent and its X-Bank-* signature
    headers. Nothing in it is believed before the signature verifies with the bank's public key."""

    body: bytes
    signature: dict[str, str]


class BankGateway(Protocol):
    def open_virtual_account(
        self, request_id: str, account_name: str, notify_url: str, designated_payer: DesignatedPayer | None = None
    ) -> datetime | None:
        """Ask the bank to open a virtual account; the account number arrives later as `account_opened`. Returns
        the bank's stamp of the request (its clock, what it counts its limits by) when its answer gives one."""

    def query_virtual_account(self, request_id: str) -> AccountOpening:
        """Where an opening request stands (raises BankRejected with code NOT_FOUND if never received)."""

    def submit_payout(self, payout: PayoutRequest) -> str:
        """Submit a payout; returns the bank reference. The result arrives later as `payout_result`."""

    def query_payout(self, payout_id: str) -> PayoutStatus:
        """Current status of a payout at the bank (raises BankRejected with code NOT_FOUND if never received)."""

    def request_signature(self, request_id: str, document_sm3: bytes, purpose: str) -> bytes:
        """The bank's detached CMS signature (DER) over a document's SM3 digest, made with its seal key."""

    def freeze(self, request_id: str, account_name: str, amount_fen: int) -> BankReceipt:
        """Ask the bank to freeze a guarantee's money; its signed receipt names the account holding it."""

    def unfreeze(self, request_id: str, account_no: str, amount_fen: int) -> BankReceipt:
        """Ask the bank to lift a freeze; its signed receipt confirms it."""


class HttpBankGateway:
    """Bank protocol v1 over HTTP; every request is signed with the platform key (X-Platform-* headers)."""

    def __init__(self, bank_code: str, base_url: str, platform_private_key_pem: bytes, timeout_s: float = 10) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"银行 {bank_code} 的接口地址必须以 http:// 或 https:// 开头", details={"url": base_url})
        self.bank_code = bank_code
        self.base_url = base_url.rstrip("/")
        self._private_key_pem = platform_private_key_pem
        self.timeout_s = timeout_s

    def open_virtual_account(
        self, request_id: str, account_name: str, notify_url: str, designated_payer: DesignatedPayer | None = None
    ) -> datetime | None:
        payload: dict[str, Any] = {"request_id": request_id, "account_name": account_name, "notify_url": notify_url}
        if designated_payer is not None:
            payload["designated_payer"] = asdict(designated_payer)
        answer = self._call("POST", "/v1/virtual-accounts", payload)
        if answer.get("code") != "ACCEPTED" or answer.get("request_id") != request_id:
            raise self._garbled("开户申请", answer)
        return _bank_stamp(answer.get("received_at"))

    def query_virtual_account(self, request_id: str) -> AccountOpening:
        answer = self._call("GET", f"/v1/virtual-accounts/{quote(request_id, safe='')}", None)
        status, account_no, account_name = answer.get("status"), answer.get("account_no"), answer.get("account_name")
        if (
            answer.get("request_id") != request_id
            or status not in _OPENING_STATES
            or not isinstance(account_name, str)
            or (status == "open") != (isinstance(account_no, str) and bool(account_no))
        ):
            raise self._garbled("开户查询", answer)
        return AccountOpening(request_id, status, account_no, account_name)

    def submit_payout(self, payout: PayoutRequest) -> str:
        answer = self._call("POST", "/v1/payouts", asdict(payout))
        bank_reference = answer.get("bank_reference")
        if answer.get("code") != "ACCEPTED" or not isinstance(bank_reference, str) or not bank_reference:
            raise self._garbled("付款申请", answer)
        return bank_reference

    def query_payout(self, payout_id: str) -> PayoutStatus:
        answer = self._call("GET", f"/v1/payouts/{quote(payout_id, safe='')}", None)
        status = answer.get("status")
        reason = answer.get("failure_reason")
        if (
            answer.get("payout_id") != payout_id
            or status not in _PAYOUT_STATES
            or not isinstance(answer.get("bank_reference"), str)
            or not (reason is None or isinstance(reason, str))
        ):
            raise self._garbled("付款查询", answer)
        return PayoutStatus(payout_id, status, answer["bank_reference"], reason)

    def request_signature(self, request_id: str, document_sm3: bytes, purpose: str) -> bytes:
        payload = {"request_id": request_id, "document_sm3": document_sm3.hex(), "purpose": purpose}
        answer = self._call("POST", "/v1/signatures", payload)
        encoded = answer.get("cms")
        if answer.get("code") != "SIGNED" or answer.get("request_id") != request_id or not isinstance(encoded, str):
            raise self._garbled("签章请求", answer)
        try:
            return base64.b64decode(encoded, validate=True)
        except ValueError as error:
            raise self._garbled("签章请求", answer) from error

    def freeze(self, request_id: str, account_name: str, amount_fen: int) -> BankReceipt:
        payload = {"request_id": request_id, "account_name": account_name, "amount_fen": amount_fen}
        return self._receipt("/v1/freezes", payload)

    def unfreeze(self, request_id: str, account_no: str, amount_fen: int) -> BankReceipt:
        payload = {"request_id": request_id, "account_no": account_no, "amount_fen": amount_fen}
        return self._receipt("/v1/unfreezes", payload)

    def _receipt(self, path: str, payload: dict[str, Any]) -> BankReceipt:
        url, response = self._send("POST", path, payload)
        if response.status_code != 200:
            answer = self._read_answer(url, response)  # raises for 4xx and 5xx
            raise self._garbled("冻结/解冻申请", answer)
        headers = {name: value for name, value in response.headers.items() if name.lower().startswith("x-bank-")}
        return BankReceipt(response.content, headers)

    def _call(self, method: str, path: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        url, response = self._send(method, path, payload)
        return self._read_answer(url, response)

    def _send(self, method: str, path: str, payload: dict[str, Any] | None) -> tuple[str, requests.Response]:
        body = b"" if payload is None else encode_json(payload)
        headers = sign_headers(PLATFORM_PREFIX, self._private_key_pem, body)
        if payload is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        url = self.base_url + path
        try:
            response = requests.request(method, url, data=body or None, headers=headers, timeout=self.timeout_s)
        except requests.RequestException as error:
            raise self._transport_error(url, error) from error
        return url, response

    def _read_answer(self, url: str, response: requests.Response) -> dict[str, Any]:
        details = {"bank": self.bank_code, "url": url, "http_status": response.status_code}
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 500 or not isinstance(answer, dict):
            raise BankOutcomeUnknown(
                f"银行 {self.bank_code} 未给出有效应答（HTTP {response.status_code}），结果未知，需查询确认",
                details={**details, "body": response.text[:500]},
            )
        if 400 <= response.status_code < 500:
            message = answer.get("message") if isinstance(answer.get("message"), str) else "银行拒绝了请求"
            code = answer.get("code") if isinstance(answer.get("code"), str) else f"HTTP_{response.status_code}"
            if response.status_code == 429:
                raise BankRateLimited(
                    f"银行 {self.bank_code} 限流：{message}",
                    code=code,
                    retry_after_s=_retry_after_s(response.headers.get("Retry-After")),
                    details=details,
                )
            raise BankRejected(f"银行 {self.bank_code} 拒绝：{message}", code=code, details=details)
        return answer

    def _transport_error(self, url: str, error: requests.RequestException) -> BankError:
        details = {"bank": self.bank_code, "url": url, "error": repr(error)}
        if _nothing_was_sent(error):
            return BankUnavailable(f"无法连接银行 {self.bank_code}，请求未送达，可以重试", details=details)
        return BankOutcomeUnknown(f"银行 {self.bank_code} 应答超时或中断，结果未知，需查询确认", details=details)

    def _garbled(self, operation: str, answer: dict[str, Any]) -> BankOutcomeUnknown:
        return BankOutcomeUnknown(
            f"银行 {self.bank_code} 对{operation}的应答内容不符合协议，结果未知，需查询确认",
            details={"bank": self.bank_code, "answer": answer},
        )

    def fetch_statement(self, day: date) -> Statement:
        """The bank's statement file (日对账单) for `day`, bytes as sent. The caller verifies the bank's
        signature over them (X-Bank-* headers, kept in `signature`) and the declared SM3."""
        url = f"{self.base_url}/v1/statements/{day.isoformat()}"
        headers = sign_headers(PLATFORM_PREFIX, self._private_key_pem, b"")
        try:
            response = requests.get(url, headers=headers, timeout=self.timeout_s)
        except requests.RequestException as error:
            raise self._transport_error(url, error) from error
        if response.status_code != 200:
            answer = self._read_answer(url, response)  # raises for 4xx and 5xx
            raise self._garbled("对账单下载", answer)
        declared_lines = response.headers.get("X-Bank-Statement-Lines", "")
        return Statement(
            bank_code=self.bank_code,
            day=day,
            content=response.content,
            complete=response.headers.get("X-Bank-Statement-Complete") == "true",
            sm3_hex=response.headers.get("X-Bank-Statement-SM3"),
            line_count=int(declared_lines) if declared_lines.isdigit() else None,
            signature={name: value for name, value in response.headers.items() if name.lower().startswith("x-bank-")},
        )


def _retry_after_s(header: str | None) -> float:
    """Retry-After in seconds (the banks send delta-seconds); one second when missing or unreadable."""
    try:
        return max(0.0, float(header)) if header is not None else 1.0
    except ValueError:
        return 1.0


def _nothing_was_sent(error: requests.RequestException) -> bool:
    """True when the connection itself failed, so the bank cannot have seen the request."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    if not isinstance(error, requests.ConnectionError) or not error.args:
        return False
    reason = getattr(error.args[0], "reason", None)  # urllib3 MaxRetryError wraps the connect failure
    return isinstance(reason, ConnectTimeoutError)  # NewConnectionError (refused, DNS) is a subclass


def _bank_stamp(text: object) -> datetime | None:
    """The bank's `received_at` (ISO 8601 with its UTC offset), or None when absent or unreadable: the stamp only
    sharpens the pacing (app.domain.rate_limit), so a bank without one, or with a garbled one, is paced as before."""
    if not isinstance(text, str):
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else None
