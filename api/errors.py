"""Every error leaves as ``application/problem+json`` (RFC 9457), one HTTP status per class."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.openapi import api_routes
from orchestrator.core import errors

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
UNREADABLE = "There was an error parsing the body"  # FastAPI's 400 for a body it cannot decode

STATUS: list[tuple[type[errors.VpsctlError], int]] = [
    (errors.InvalidRequest, 422),
    (errors.NotFound, 404),
    (errors.Forbidden, 403),
    (errors.Unauthorized, 401),
    (errors.Conflict, 409),
    (errors.InsufficientCapacity, 422),
    (errors.ContractRefusal, 422),
    (errors.ImageError, 422),
    (errors.TransientError, 503),
    (errors.HypervisorError, 502),
    (errors.OperationFailed, 500),
]


def problem(status: int, title: str, detail: str, type_: str = "about:blank", *, instance: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """A problem document (RFC 9457; the OpenAPI document declares it as ``Problem``, api/openapi.py)."""
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    if instance is not None:
        body["instance"] = instance
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers or None)


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods some route of ``app`` answers at ``path``."""
    return sorted({method for route in api_routes(app) if route.path_regex.match(path)
                   for method in route.methods or ()})


def _slug(cls: type[errors.VpsctlError]) -> str:
    return "/problems/" + "".join("-" + c.lower() if c.isupper() else c for c in cls.__name__).lstrip("-")


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.VpsctlError)
    async def domain_error(request: Request, exc: errors.VpsctlError) -> JSONResponse:
        status = next((code for cls, code in STATUS if isinstance(exc, cls)), 500)
        extra: dict[str, Any] = {}
        if isinstance(exc, errors.ContractRefusal):
            extra["rule"] = exc.rule
        if isinstance(exc, errors.InvalidState):
            extra["current_status"] = exc.status
        if isinstance(exc, errors.QuotaExceeded):
            extra.update(quota=exc.quota, limit=exc.limit)
        return problem(status, exc.title, exc.detail, _slug(type(exc)), instance=request.url.path, **extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        messages = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            messages.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
        return problem(422, "Invalid request", "; ".join(messages)[:2000], "/problems/invalid-request",
                       instance=request.url.path,
                       errors=[{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()][:50])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == UNREADABLE:  # FastAPI: a body json.loads cannot decode
            return problem(422, "Invalid request", "body: not a JSON document in UTF-8", "/problems/invalid-request",
                           instance=request.url.path, errors=[{"loc": ["body"], "msg": "not UTF-8 JSON"}])
        headers = dict(exc.headers or {})  # 401 keeps its WWW-Authenticate
        if exc.status_code == 405:  # RFC 9110: Allow lists every method of the path, not one route's
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path)) or headers.get("Allow", "")
        return problem(exc.status_code, str(exc.detail), str(exc.detail), instance=request.url.path,
                       headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(500, "Internal error", "an unexpected error occurred; it has been logged",
                       instance=request.url.path)
