from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import SessionDep
from api.schemas.fleet import Health
from orchestrator import __version__

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def get_health(session: SessionDep) -> Health:
    """Liveness and database reachability; needs no token."""
    session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    return Health(status="ok", version=__version__)
