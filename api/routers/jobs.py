from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentPrincipal, SessionDep
from api.schemas.jobs import JobOut
from api.scopes import scoped
from api.views import job_out
from orchestrator.core.access import visible_job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[scoped("vps")])


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, session: SessionDep, principal: CurrentPrincipal) -> JobOut:
    """A job: queued, running, succeeded or failed, with its progress and timed events."""
    return job_out(session, visible_job(session, principal, job_id), principal)
