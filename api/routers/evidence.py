"""R6.3-evidence: staff ask for, list and download the evidence of what a VPS served.

Staff only: a customer gets 403 for their own VPS's evidence and 404 for anything of another
customer (R7-confidential).  Asking is a job (in the VPS's events); each download is audited.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse
from sqlmodel import Session, select

from api.audiences import STAFF
from api.deps import CurrentPrincipal, SessionDep, SettingsDep
from api.operations import expose
from api.pages import Cursor, Limit, Order, Page, Since, Until, filtered, page_of
from api.schemas.evidence import EvidenceOut
from api.scopes import scoped
from orchestrator.core.access import visible_vps
from orchestrator.core.auth import Principal, require_staff
from orchestrator.core.errors import NotFound
from orchestrator.core.models import Audit, Evidence, Vps
from orchestrator.operations import evidence
from orchestrator.operations.evidence import EvidenceVps

router = APIRouter(tags=["evidence"], dependencies=[scoped("security")])


def _out(row: Evidence) -> EvidenceOut:
    return EvidenceOut(**row.model_dump(exclude={"fetched_at"}), fetched_at=row.fetched_at,
                       download=f"/v1/evidence/{row.id}/download")


def _staff_vps(session: Session, principal: Principal, vps_id: str) -> Vps:
    """Another customer's VPS is a 404; the client's own is a 403 (evidence is staff-only)."""
    vps = visible_vps(session, principal, vps_id)
    require_staff(principal, "evidence of a VPS's content is for staff only (R6.3-evidence)")
    return vps


def _evidence(session: Session, principal: Principal, evidence_id: str) -> Evidence:
    row = session.get(Evidence, evidence_id[:36])
    try:
        if row is None:
            raise NotFound("not found")
        _staff_vps(session, principal, row.vps_id)
    except NotFound:
        raise NotFound("not found") from None  # never the id of another customer's VPS
    return row


expose(router, EvidenceVps, prefix="/v1/vps/{vps_id}", name="ask_evidence")


@router.get("/v1/vps/{vps_id}/evidence", response_model=Page[EvidenceOut], openapi_extra=STAFF)
def list_evidence(
    vps_id: str, session: SessionDep, principal: CurrentPrincipal,
    since: Since = None, until: Until = None, limit: Limit = 50, cursor: Cursor = None, order: Order = "desc",
) -> Page[EvidenceOut]:
    """The evidence kept for this VPS, newest fetched first, a page at a time (staff)."""
    vps = _staff_vps(session, principal, vps_id)
    query = filtered(select(Evidence).where(Evidence.vps_id == vps.id), (), Evidence.fetched_at, since, until)
    rows, after = page_of(session, query, (Evidence.fetched_at, Evidence.id), cursor, limit, order)
    return Page[EvidenceOut](items=[_out(row) for row in rows], next=after)


@router.get("/v1/evidence/{evidence_id}", response_model=EvidenceOut, openapi_extra=STAFF)
def get_evidence(evidence_id: str, session: SessionDep, principal: CurrentPrincipal) -> EvidenceOut:
    """One piece of evidence: what was asked, when, by whom, and what came back (staff)."""
    return _out(_evidence(session, principal, evidence_id))


@router.get("/v1/evidence/{evidence_id}/download", response_class=FileResponse, openapi_extra=STAFF,
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
    return FileResponse(path, media_type="application/octet-stream", filename=f"evidence-{row.id}.http")
