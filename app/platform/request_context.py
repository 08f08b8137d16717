"""What the current request or job is about - request id, deal id, bank - for the logs.

Values live in contextvars (one per thread or task), so a log call anywhere below a view or a job
handler carries them; `app.platform.logs.ContextFilter` copies them onto every log record.

Web requests: the request id is the caller's `X-Request-ID` when it looks like one (a proxy's or load
balancer's id, 1-64 of `A-Z a-z 0-9 . _ -`), otherwise a new random one; it is returned in the
response's `X-Request-ID` header. The deal id and the bank come from the URL (`deal_id`, `bank_code`)
where it has them; code that learns them later calls `bind_context(deal_id=..., bank=...)`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
deal_id: ContextVar[int | None] = ContextVar("deal_id", default=None)
bank: ContextVar[str | None] = ContextVar("bank", default=None)
job_id: ContextVar[int | None] = ContextVar("job_id", default=None)

_VARS: dict[str, ContextVar[Any]] = {"request_id": request_id, "deal_id": deal_id, "bank": bank, "job_id": job_id}


def current() -> dict[str, Any]:
    """The values that are set (for a log record)."""
    return {name: value for name, var in _VARS.items() if (value := var.get()) is not None}


def set_context(**values: Any) -> list[tuple[ContextVar[Any], Token[Any]]]:
    """Set some of request_id, deal_id, bank, job_id; returns tokens for `reset_context`."""
    unknown = set(values) - set(_VARS)
    if unknown:
        raise TypeError(f"unknown context fields: {sorted(unknown)}")
    return [(_VARS[name], _VARS[name].set(value)) for name, value in values.items() if value is not None]


def reset_context(tokens: list[tuple[ContextVar[Any], Token[Any]]]) -> None:
    for var, token in reversed(tokens):
        var.reset(token)


def bind_job_context(**values: Any) -> None:
    """For job handlers: bind deal and bank for the rest of the job - only inside a worker's job (which runs in a
    copied context that ends with it); a no-op when a handler is called directly, so nothing leaks."""
    if job_id.get() is not None:
        set_context(**values)


@contextmanager
def bind_context(**values: Any) -> Iterator[None]:
    """`with bind_context(deal_id=7, bank="ceb"):` - for the duration of the block."""
    tokens = set_context(**values)
    try:
        yield
    finally:
        reset_context(tokens)


def incoming_request_id(header: str | None) -> str:
    """The caller's request id if it is a sane one, else a new one (never echo arbitrary text into logs)."""
    if header and _VALID_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def register(app: Flask) -> None:
    """Bind the request id (and deal, bank from the URL) for each request; answer with X-Request-ID."""
    from flask import g, request

    @app.before_request
    def _bind() -> None:
        args = request.view_args or {}
        deal = args.get("deal_id")
        g.request_context_tokens = set_context(
            request_id=incoming_request_id(request.headers.get(REQUEST_ID_HEADER)),
            deal_id=deal if isinstance(deal, int) else None,
            bank=args.get("bank_code") if isinstance(args.get("bank_code"), str) else None,
        )

    @app.after_request
    def _answer(response: Response) -> Response:
        rid = request_id.get()
        if rid is not None:
            response.headers[REQUEST_ID_HEADER] = rid
        return response

    @app.teardown_request
    def _unbind(_error: BaseException | None) -> None:
        tokens = g.pop("request_context_tokens", None)
        if tokens:
            with suppress(ValueError):  # set in another context (should not happen): left to be overwritten
                reset_context(tokens)
