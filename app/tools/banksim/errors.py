"""Errors the simulated bank answers with: JSON `{"code": ..., "message": 中文}` and an HTTP status."""

from __future__ import annotations

from typing import Any

from app.platform.errors import CunguanError


class SimulatorError(CunguanError):
    def __init__(
        self, message: str, *, code: str, http_status: int, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.http_status = http_status
        self.headers = headers or {}


def malformed(message: str, details: Any = None) -> SimulatorError:
    return SimulatorError(message, code="MALFORMED", http_status=400, details=details)


def unknown_bank(bank_code: str) -> SimulatorError:
    return SimulatorError(f"未知银行：{bank_code}", code="UNKNOWN_BANK", http_status=404, details={"bank": bank_code})


def account_not_found(bank_code: str, account_no: str) -> SimulatorError:
    return SimulatorError(
        f"账户不存在或尚未开立：{account_no}",
        code="ACCOUNT_NOT_FOUND",
        http_status=404,
        details={"bank": bank_code, "account_no": account_no},
    )


def conflict(message: str, details: Any = None) -> SimulatorError:
    return SimulatorError(message, code="CONFLICT", http_status=409, details=details)


def not_found(message: str) -> SimulatorError:
    return SimulatorError(message, code="NOT_FOUND", http_status=404)


def system_busy() -> SimulatorError:
    """The 5xx fault: refused before anything is booked."""
    return SimulatorError("银行系统繁忙，请稍后重试", code="SYSTEM_BUSY", http_status=503)


def operation_refused(code: str, message: str, request_id: str) -> SimulatorError:
    """The bank will not do it (a freeze without the money, an unfreeze above what is frozen): 422, final."""
    return SimulatorError(message, code=code, http_status=422, details={"request_id": request_id})
