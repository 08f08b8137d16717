"""Structured logs: one JSON object per line, with the request id when there is one."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class ContextFilter(logging.Filter):
    """Copies the request id, deal id, bank and job id of the current request or job onto each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        from app.platform.request_context import current

        for key, value in current().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class PiiMaskingFilter(logging.Filter):
    """Masks ID numbers, phones and account numbers in the message, the extra fields and the traceback
    (app/domain/pii_mask.py) before any handler formats the record. Fields named like PII (`*_id_number`,
    `*phone*`, `*bank_account*`, `payer_name` …) are masked whatever their value looks like."""

    def filter(self, record: logging.LogRecord) -> bool:
        from app.domain.pii_mask import mask_pii_in_text

        message = record.getMessage()
        masked = mask_pii_in_text(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD:
                record.__dict__[key] = _mask_value(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_pii_in_text(logging.Formatter().formatException(record.exc_info))
        return True


def _mask_value(key: str, value: Any) -> Any:
    from app.domain.pii_mask import mask_pii_in_data

    return mask_pii_in_data(key, value)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({key: value for key, value in record.__dict__.items() if key not in _STANDARD})
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def app_log_handler(stream: TextIO) -> logging.Handler:
    """The platform's log handler: JSON lines on `stream`, with the request context, PII masked."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(PiiMaskingFilter())  # last: masks what every other filter added too
    return handler


def configure_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if any(isinstance(handler.formatter, JsonFormatter) for handler in root.handlers):
        return
    root.addHandler(app_log_handler(sys.stderr))
    root.setLevel(level)
    for noisy in ("alembic", "weasyprint", "fontTools"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
