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


_LOCATIONS = ("body", "query", "path", "header", "cookie")


def _field_name(loc: tuple) -> str:
    # Only the first element says where (body, query ...): a field may itself be called "query".
    parts = [str(p) for p in (loc[1:] if loc and loc[0] in _LOCATIONS else loc)]
    return ".".join(parts) or (str(loc[0]) if loc else "body")


def _model_at(model: Any, path: tuple) -> Any:
    """The pydantic model that holds the field at ``path`` (list indexes skipped), or None."""
    import typing

    from pydantic import BaseModel

    for part in path:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        ann = model.model_fields[part].annotation
        while typing.get_origin(ann) in (list, typing.Union, getattr(__import__("types"), "UnionType", None)):
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            ann = args[0] if args else None
        model = ann
    return model if isinstance(model, type) else None


def _body_model(request: Request) -> Any:
    route = request.scope.get("route")
    field = getattr(route, "body_field", None)
    return getattr(getattr(field, "field_info", None), "annotation", None)


def _bounds(model: Any, name: str) -> str:
    try:
        meta = model.model_fields[name].metadata
    except (AttributeError, KeyError):
        return ""
    lo = next((getattr(m, "ge", None) for m in meta if getattr(m, "ge", None) is not None), None)
    hi = next((getattr(m, "le", None) for m in meta if getattr(m, "le", None) is not None), None)
    if lo is not None and hi is not None:
        return f" from {lo} to {hi}"
    return f" of at least {lo}" if lo is not None else f" of at most {hi}" if hi is not None else ""


def _enrich(err: dict, model: Any) -> tuple[str, list | None] | None:
    """Say what is allowed for errors pydantic leaves vague: unknown fields, strict types."""
    loc = tuple(err.get("loc", ()))
    path = loc[1:] if loc and loc[0] in _LOCATIONS else loc
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        holder = _model_at(model, path[:-1])
        allowed = sorted(holder.model_fields) if holder is not None else None
        return "unknown field" + (f" (allowed: {', '.join(allowed)})" if allowed else ""), allowed
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false (JSON booleans, not strings)", [True, False]
    if kind in ("int_type", "int_parsing", "int_from_float") and path:
        holder = _model_at(model, path[:-1])
        return f"must be a JSON integer{_bounds(holder, str(path[-1]))}, not {type(err.get('input')).__name__}", None
    if kind in ("float_type", "float_parsing") and path:
        holder = _model_at(model, path[:-1])
        return f"must be a JSON number{_bounds(holder, str(path[-1]))}, not {type(err.get('input')).__name__}", None
    if kind == "string_type" and path:
        return f"must be text, not {type(err.get('input')).__name__}", None
    return None


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
        model = _body_model(request)
        problems = []
        for err in errors:
            loc = tuple(err.get("loc", ()))
            field = "body" if err.get("type") == "json_invalid" else _field_name(loc)
            better = _enrich(err, model) if loc[:1] == ("body",) and len(loc) > 1 else None
            message, allowed = better if better else (_describe(err), _allowed(err))
            problems.append({"field": field, "message": message, "allowed": allowed})
        first = problems[0] if problems else {"field": "body", "message": "is not valid", "allowed": None}
        status = 400 if any(e.get("type") == "json_invalid" for e in errors) else 422
        message = f"{first['field']}: {first['message']}"
        if first["allowed"] and "(allowed:" not in message:
            message += f" (allowed: {', '.join(json.dumps(a) if not isinstance(a, str) else a for a in first['allowed'])})"
        return JSON(error_body("ValidationError", message, first["field"], first["allowed"], problems=problems),
                    status_code=status)

    @app.exception_handler(AtoCoreError)
    async def _atocore(request: Request, exc: AtoCoreError) -> Response:
        status = exc.status_code
        if isinstance(exc, StoreError):
            status = 503  # the store itself is the problem: the request was fine
        return JSON(exc.to_dict(), status_code=status, headers=getattr(exc, "headers", None))

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
