"""Dependencies, as ``Annotated`` aliases so that handlers read like their signature.

``SessionDep`` is the request's unit of work: the handler and what it calls record in one
session, committed when the handler returns (before the answer is sent) and rolled back when it
raises — nothing a refused request did is kept.  Committing it wakes the worker when it recorded
a job (orchestrator/engine/jobs.py) and the outbox when it queued mail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from orchestrator.core.auth import Principal, authenticate, require_staff
from orchestrator.core.errors import Unauthorized
from orchestrator.core.settings import Settings

_bearer = HTTPBearer(auto_error=False,
                     description="`Authorization: Bearer <token>` (vpsctl token create, POST /v1/tokens)")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        session.commit()


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Who is asking: authenticated by the guard before the body was read (api/guard.py); the
    bearer scheme is declared here for the API's documentation."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal) or credentials is None:
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def staff_principal(principal: CurrentPrincipal) -> Principal:
    require_staff(principal)
    return principal


StaffPrincipal = Annotated[Principal, Depends(staff_principal)]


def websocket_principal(websocket: WebSocket) -> Principal | None:
    """The bearer token of a WebSocket's opening request; None when it has none or a bad one (the
    handler closes the socket with a policy violation: a WebSocket cannot answer 401)."""
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    engine: Engine = websocket.app.state.engine
    with Session(engine) as session:
        try:
            return authenticate(session, token.strip())
        except Unauthorized:
            return None
