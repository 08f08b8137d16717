"""The TSA over HTTP (RFC 3161 §3.4): `POST /` with an application/timestamp-query body answers
application/timestamp-reply; `GET /certificate` gives the TSA's certificate (PEM), `GET /healthz` says it runs.
A plain WSGI app (werkzeug), independent of the platform's Flask app: `flask tsa serve` runs it in its own process."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.wrappers import Request, Response

from app.tsa.authority import Authority
from app.tsa.protocol import QUERY_CONTENT_TYPE, REPLY_CONTENT_TYPE

MAX_QUERY_BYTES = 16 * 1024  # an SM3 query is under 100 bytes; anything near this is not a timestamp query


def _text(message: str, status: int) -> Response:
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8")


class TsaApp:
    def __init__(self, authority: Authority) -> None:
        self.authority = authority

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except HTTPException as error:
            response = _text(f"{error.code} {error.description}", error.code or 400)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        if request.path == "/healthz":
            return _text("ok", 200)
        if request.path == "/certificate" and request.method == "GET":
            return Response(self.authority.identity.certificate_pem, content_type="application/x-pem-file")
        if request.path != "/":
            raise NotFound("没有这个地址")
        if request.method == "GET":
            return _text("RFC 3161 时间戳服务（SM2/SM3）：请以 POST 提交 application/timestamp-query", 200)
        if request.method != "POST":
            raise MethodNotAllowed(["GET", "POST"], "只接受 POST")
        if request.mimetype != QUERY_CONTENT_TYPE:
            raise UnsupportedMediaType(f"请求类型必须是 {QUERY_CONTENT_TYPE}")
        if (request.content_length or 0) > MAX_QUERY_BYTES:
            raise RequestEntityTooLarge("时间戳请求过大")
        body = request.stream.read(MAX_QUERY_BYTES + 1)
        if len(body) > MAX_QUERY_BYTES:
            raise RequestEntityTooLarge("时间戳请求过大")
        return Response(self.authority.respond(body), content_type=REPLY_CONTENT_TYPE)
