"""Every bad request is a 4xx JSON body naming the field and what is allowed; never a 500 trace."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..errors import AtoCoreError, StoreError

log = logging.getLogger("atocore.server")


class JSON(Response):
    """Plain ``json.dumps`` (no jsonable_encoder walk): the hot paths return ready dicts."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def error_body(error: str, message: str, field: str | None = None, allowed: list | None = None,
               **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"error": error, "message": message}
    if field is not None:
        out["field"] = field
    if allowed is not None:
        out["allowed"] = allowed
    out.update(extra)
    return out


def _field_name(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or (str(loc[0]) if loc else "body")


def _allowed(err: dict) -> list | None:
    ctx = err.get("ctx") or {}
    expected = ctx.get("expected")
    if isinstance(expected, str) and "'" in expected:
        return [p.strip().strip("'") for p in expected.replace(" or ", ",").split(",") if p.strip()]
    return None


_TYPE_WORDS = {"string_type": "must be text", "int_type": "must be an integer", "int_parsing": "must be an integer",
               "int_from_float": "must be a whole number", "float_type": "must be a number",
               "float_parsing": "must be a number", "bool_type": "must be true or false",
               "bool_parsing": "must be true or false", "list_type": "must be a list",
               "dict_type": "must be a JSON object", "model_attributes_type": "must be a JSON object"}


def _describe(err: dict) -> str:
    kind = err.get("type", "")
    if kind in _TYPE_WORDS and tuple(err.get("loc", ())) != ("body",):
        return _TYPE_WORDS[kind]
    if kind == "missing":
        return "is required"
    if kind == "json_invalid":
        return "the body is not valid JSON" + (f" ({err['ctx'].get('error')})" if err.get("ctx") else "")
    if kind in ("model_attributes_type", "dict_type") and tuple(err.get("loc", ())) == ("body",):
        return "the body must be a JSON object"
    return str(err.get("msg", "is not valid"))


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        problems = []
        for err in errors:
            loc = tuple(err.get("loc", ()))
            field = "body" if err.get("type") == "json_invalid" else _field_name(loc)
            problems.append({"field": field, "message": _describe(err), "allowed": _allowed(err)})
        first = problems[0] if problems else {"field": "body", "message": "is not valid", "allowed": None}
        status = 400 if any(e.get("type") == "json_invalid" for e in errors) else 422
        message = f"{first['field']}: {first['message']}"
        if first["allowed"]:
            message += f" (allowed: {', '.join(map(str, first['allowed']))})"
        return JSON(error_body("ValidationError", message, first["field"], first["allowed"], problems=problems),
                    status_code=status)

    @app.exception_handler(AtoCoreError)
    async def _atocore(request: Request, exc: AtoCoreError) -> Response:
        status = exc.status_code
        if isinstance(exc, StoreError):
            status = 503  # the store itself is the problem: the request was fine
        return JSON(exc.to_dict(), status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc.detail, dict):
            body = exc.detail
        else:
            names = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
                     413: "TooLarge"}
            body = error_body(names.get(exc.status_code, "HTTPError"), str(exc.detail))
            if exc.status_code == 404 and exc.detail == "Not Found":
                body["message"] = f"no endpoint {request.method} {request.url.path}; see /docs"
        return JSON(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:  # a bug: say so, log the trace
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSON(error_body("InternalError", f"{type(exc).__name__}: {exc}"), status_code=500)


class BodyLimit:
    """Pure ASGI middleware: refuse bodies over ``max_bytes`` (declared or streamed) with 413 JSON."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = None
                break
        if declared is not None:
            if declared > self.max_bytes:
                return await self._refuse(send)
            return await self.app(scope, receive, send)
        # No length declared (chunked): read it here, within the limit, then replay it.
        # (FastAPI turns any error raised while it reads the body into a generic 400.)
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, replay_messages([message], receive), send)
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                return await self._refuse(send)
            if not message.get("more_body", False):
                break
        return await self.app(scope, replay_messages([{"type": "http.request", "body": bytes(body), "more_body": False}],
                                             receive), send)

    async def _refuse(self, send) -> None:
        body = json.dumps(error_body("TooLarge", f"the request body is larger than {self.max_bytes} bytes",
                                     "body")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def replay_messages(messages: list, receive):
    pending = list(messages)

    async def replay():
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
