"""How the HTTP edge asks for an operation: one handler shape for every operation, made from the
operation's own declaration (its parameters are the request body, its docstring the
documentation).  ``expose(router, Operation)`` is the one line a new operation needs.

This module does not use ``from __future__ import annotations``: the handlers it makes are read
by FastAPI, which needs their annotations as real types, the operation's parameter model among
them."""

import inspect
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, status
from pydantic import BaseModel
from sqlmodel import Session

from api.deps import CurrentPrincipal, SessionDep, SettingsDep
from api.schemas.jobs import JobAccepted, MigratePlanOut, ResizePlanOut
from api.views import job_out
from orchestrator.core.access import visible_vps
from orchestrator.core.auth import Principal
from orchestrator.core.models import Job
from orchestrator.core.settings import Settings
from orchestrator.engine.context import PLAN, Request
from orchestrator.engine.operation import Operation, Params, request

# Answered by the guard (api/guard.py) before the handler runs; declared here for the documentation.
IdempotencyKey = Annotated[
    str | None,
    Header(alias="idempotency-key", max_length=200,
           description="Repeat a POST with the same key to get the same job back"),
]


# The operations whose answer shows their plan, and how.
PLANS: dict[str, type[BaseModel]] = {"resize": ResizePlanOut, "migrate": MigratePlanOut}


def accepted(session: Session, job: Job, principal: Principal) -> JobAccepted:
    """The answer to an operation asked: its job, and the plan when the operation shows it."""
    plan = job.params.get(PLAN) if job.kind in PLANS else None
    shown = PLANS[job.kind].model_validate(plan) if plan else None
    return JobAccepted(job=job_out(session, job, principal), plan=shown)


def ask(session: Session, settings: Settings, principal: Principal, vps_id: str,
        operation: type[Operation[Any]], params: Params) -> Job:
    """The VPS as its asker may see it (another customer's is a 404), then the operation's one
    request path (orchestrator/engine/operation.py)."""
    vps = visible_vps(session, principal, vps_id)
    wide = operation.job_params
    if wide is not None and not isinstance(params, wide):
        params = wide.model_validate(params.model_dump())
    return request(Request(session, settings, principal, vps), operation, params)


def expose(router: APIRouter, operation: type[Operation[Any]], *, name: str | None = None,
           prefix: str = "", body_required: bool | None = None, audience: str | None = None) -> None:
    """``POST <router prefix><operation.route>`` with the operation's parameters as the body
    (optional when every field has a default unless ``body_required``, absent when there is
    none), answering 202.  ``audience`` (api/audiences.py) when the route's callers are narrower than
    the operation's: a client asks for a resize through a change order, never here."""
    assert operation.route, f"{operation.kind} has no route"
    model = operation.params
    fields = model.model_fields

    def handler(vps_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
                _idempotency_key: IdempotencyKey = None, body: Any = None) -> JobAccepted:
        job = ask(session, settings, principal, vps_id, operation, body if body is not None else model())
        return accepted(session, job, principal)

    signature = inspect.signature(handler)
    parameters = list(signature.parameters.values())
    if not fields:
        parameters = parameters[:-1]
    elif body_required or (body_required is None and any(field.is_required() for field in fields.values())):
        parameters[-1] = parameters[-1].replace(annotation=Annotated[model, Body()], default=inspect.Parameter.empty)
        parameters = [parameters[-1], *parameters[:-1]]
    else:
        parameters[-1] = parameters[-1].replace(annotation=Annotated[model | None, Body()], default=None)
    handler.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    endpoint = name or f"{operation.kind.replace('-', '_')}_vps"
    handler.__name__ = endpoint
    router.add_api_route(prefix + operation.route, handler, methods=["POST"], name=endpoint,
                         status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted,
                         description=inspect.cleandoc(operation.__doc__ or ""),
                         openapi_extra={"x-audience": audience or operation.audience.value})
