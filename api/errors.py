"""Every error leaves as ``application/problem+json`` (RFC 9457), one HTTP status per class."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.core import errors

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"

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


def problem(status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _slug(cls: type[errors.VpsctlError]) -> str:
    return "/problems/" + "".join("-" + c.lower() if c.isupper() else c for c in cls.__name__).lstrip("-")


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.VpsctlError)
    async def domain_error(_request: Request, exc: errors.VpsctlError) -> JSONResponse:
        status = next((code for cls, code in STATUS if isinstance(exc, cls)), 500)
        extra: dict[str, Any] = {}
        if isinstance(exc, errors.ContractRefusal):
            extra["rule"] = exc.rule
        if isinstance(exc, errors.InvalidState):
            extra["current_status"] = exc.status
        if isinstance(exc, errors.QuotaExceeded):
            extra.update(quota=exc.quota, limit=exc.limit)
        return problem(status, exc.title, exc.detail, _slug(type(exc)), **extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        messages = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            messages.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
        return problem(422, "Invalid request", "; ".join(messages)[:2000], "/problems/invalid-request",
                       errors=[{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()][:50])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(500, "Internal error", "an unexpected error occurred; it has been logged")
