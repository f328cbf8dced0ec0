"""Dependencies, as ``Annotated`` aliases so that handlers read like their signature."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from orchestrator.auth import Principal, authenticate
from orchestrator.errors import Forbidden, Unauthorized
from orchestrator.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>` (vpsctl token create)")


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]


def get_principal(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
    principal = authenticate(session, credentials.credentials)
    session.rollback()  # end the read transaction (SQLite: release the lock before the handler)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_staff(principal: CurrentPrincipal) -> Principal:
    if not principal.is_staff:
        raise Forbidden("this needs a support or automation token")
    return principal


StaffPrincipal = Annotated[Principal, Depends(require_staff)]
