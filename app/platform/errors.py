"""Typed errors: every error has a machine code, a Chinese message for people and details."""

from __future__ import annotations

from typing import Any


class CunguanError(Exception):
    """Root of all domain errors. `code` is stable for machines; `message` is zh-CN for people."""

    code = "ERROR"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class ValidationError(CunguanError):
    """Input that does not satisfy the rules; `details` maps field -> Chinese message."""

    code = "VALIDATION_ERROR"


class ConfigError(CunguanError):
    code = "CONFIG_ERROR"
    http_status = 500


class AgreementTemplateError(ConfigError):
    """An agreement template or clause that cannot be rendered: refused by the sandbox, not parsing, or naming
    data the deal does not have. The people who edit them are told in Chinese (422, never a 500)."""

    code = "AGREEMENT_TEMPLATE_UNSAFE"
    http_status = 422


class WorkflowError(CunguanError):
    code = "WORKFLOW_ERROR"
    http_status = 500


class TransitionNotAllowed(WorkflowError):
    code = "TRANSITION_NOT_ALLOWED"
    http_status = 409


class LedgerError(CunguanError):
    code = "LEDGER_ERROR"
    http_status = 409


class CryptoError(CunguanError):
    code = "CRYPTO_ERROR"
    http_status = 500


class SignatureError(CryptoError):
    code = "BAD_SIGNATURE"
    http_status = 401


class BankError(CunguanError):
    """A bank answered with an error or could not be reached."""

    code = "BANK_ERROR"
    http_status = 502


class NotFound(CunguanError):
    code = "NOT_FOUND"
    http_status = 404


class Busy(CunguanError):
    """Concurrent work on the same records did not settle within the retries: try again later."""

    code = "BUSY"
    http_status = 409
