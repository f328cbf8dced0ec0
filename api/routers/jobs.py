from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep
from api.pages import Cursor, Limit, Order, Page, filtered, page_of
from api.schemas.jobs import JobOut, JobSummaryOut
from api.scopes import scoped
from api.views import job_out, job_summary
from orchestrator.core.access import listed_customer, visible_job
from orchestrator.core.models import Job, JobStatus, Vps

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[scoped("vps")])


@router.get("", response_model=Page[JobSummaryOut], operation_id="list_jobs")
def list_jobs(
    session: SessionDep,
    principal: CurrentPrincipal,
    vps_id: Annotated[str | None, Query(max_length=36)] = None,
    kind: Annotated[str | None, Query(max_length=32, description="e.g. create, resize, delete")] = None,
    status: JobStatus | None = None,
    customer_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="staff only")] = None,
    since: Annotated[datetime | None, Query(description="asked from this instant on (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="asked before this instant")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    order: Order = "desc",
) -> Page[JobSummaryOut]:
    """Jobs, newest first, without their events (``GET /v1/jobs/{id}`` has them): a customer's
    are those of their VPS; staff see every job."""
    query = select(Job)
    owner = listed_customer(principal, customer_id)
    if owner is not None:
        query = query.join(Vps, col(Vps.id) == col(Job.vps_id)).where(Vps.customer_id == owner)
    query = filtered(query, ((Job.vps_id, vps_id), (Job.kind, kind), (Job.status, status)), Job.created_at,
                     since, until)
    rows, after = page_of(session, query, (Job.created_at, Job.id), cursor, limit, order)
    return Page[JobSummaryOut](items=[job_summary(job, principal) for job in rows], next=after)


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, session: SessionDep, principal: CurrentPrincipal) -> JobOut:
    """A job: queued, running, succeeded or failed, with its progress and timed events."""
    return job_out(session, visible_job(session, principal, job_id), principal)
