"""R6.3-evidence: staff ask for, list and download the evidence of what a VPS served.

Staff only: a customer gets 403 for their own VPS's evidence and 404 for anything of another
customer (R7-confidential).  Asking is a job (in the VPS's events); each download is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlmodel import Session, col, select

from api.deps import CurrentPrincipal, SessionDep, SettingsDep
from api.schemas import JobAccepted
from api.views import job_out
from orchestrator import evidence
from orchestrator.access import visible_vps
from orchestrator.auth import Principal
from orchestrator.errors import Forbidden, NotFound
from orchestrator.models import Audit, Evidence, Vps
from orchestrator.operations.base import request
from orchestrator.operations.evidence import EvidenceVps

router = APIRouter(tags=["evidence"])


class EvidenceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)] = Field(
        description="Why the content is checked (the suspected breach); recorded with the evidence")
    port: int = Field(default=80, ge=1, le=65535)
    path: Annotated[str, StringConstraints(pattern=evidence.PATH_PATTERN, max_length=2000)] = Field(
        default="/", description="Absolute path and query, printable ASCII without spaces")
    host_header: Annotated[str, StringConstraints(pattern=evidence.HOST_PATTERN, max_length=255)] | None = Field(
        default=None, description="Host header to send (a name-based virtual host); default: the address")


class EvidenceOut(BaseModel):
    id: str
    vps_id: str
    job_id: str
    requested_by: str
    reason: str
    url: str
    host_header: str | None
    fetched_at: datetime | None
    status_code: int | None
    headers: list[list[str]]
    body_sha256: str | None
    size_bytes: int
    truncated: bool
    error: str | None
    download: str


def _out(row: Evidence) -> EvidenceOut:
    return EvidenceOut(**row.model_dump(exclude={"fetched_at"}), fetched_at=row.fetched_at,
                       download=f"/v1/evidence/{row.id}/download")


def _staff_vps(session: Session, principal: Principal, vps_id: str) -> Vps:
    """Another customer's VPS is a 404; the client's own is a 403 (evidence is staff-only)."""
    vps = visible_vps(session, principal, vps_id)
    if not principal.is_staff:
        raise Forbidden("evidence of a VPS's content is for staff only (R6.3-evidence)")
    return vps


def _evidence(session: Session, principal: Principal, evidence_id: str) -> Evidence:
    row = session.get(Evidence, evidence_id[:36])
    if row is None:
        raise NotFound(f"no evidence {evidence_id[:64]!r}")
    _staff_vps(session, principal, row.vps_id)
    return row


@router.post("/v1/vps/{vps_id}/evidence", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def ask_evidence(vps_id: str, body: EvidenceBody, session: SessionDep, settings: SettingsDep,
                 principal: CurrentPrincipal) -> JobAccepted:
    """R6.3-evidence (staff): fetch `http://<the VPS's first address>:<port><path>` like a visitor
    (one GET, redirects recorded not followed, bounded in time and size) and keep the response as
    evidence.  The job's result names the evidence; a VPS that cannot be reached (e.g. cut off)
    ends the job failed with the reason."""
    vps = _staff_vps(session, principal, vps_id)
    job = request(session, settings, principal, vps, EvidenceVps, body.model_dump(exclude_none=True))
    return JobAccepted(job=job_out(session, job))


@router.get("/v1/vps/{vps_id}/evidence", response_model=list[EvidenceOut])
def list_evidence(vps_id: str, session: SessionDep, principal: CurrentPrincipal) -> list[EvidenceOut]:
    """The evidence kept for this VPS, oldest first (staff)."""
    vps = _staff_vps(session, principal, vps_id)
    rows = session.exec(select(Evidence).where(Evidence.vps_id == vps.id).order_by(col(Evidence.fetched_at))).all()
    return [_out(row) for row in rows]


@router.get("/v1/evidence/{evidence_id}", response_model=EvidenceOut)
def get_evidence(evidence_id: str, session: SessionDep, principal: CurrentPrincipal) -> EvidenceOut:
    """One piece of evidence: what was asked, when, by whom, and what came back (staff)."""
    return _out(_evidence(session, principal, evidence_id))


@router.get("/v1/evidence/{evidence_id}/download", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_evidence(evidence_id: str, session: SessionDep, settings: SettingsDep,
                      principal: CurrentPrincipal) -> FileResponse:
    """The raw response as received (status line, headers, body up to the cap); audited (staff)."""
    row = _evidence(session, principal, evidence_id)
    path = evidence.raw_path(settings, row.job_id)
    if not path.is_file():
        raise NotFound(f"the raw response of evidence {row.id} is not on this server")
    session.add(Audit(vps_id=row.vps_id, actor=str(principal), action="evidence-download",
                      detail=f"evidence {row.id} downloaded"))
    session.commit()
    return FileResponse(path, media_type="application/octet-stream", filename=f"evidence-{row.id}.http")
