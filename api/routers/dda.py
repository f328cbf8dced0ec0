"""``/v1/dda-requests``: the Statement of Applicability (DDA), disclosed on request after the
security officer's approval and a signed NDA (R2-dda). Every step and download is recorded and
shown as the request's history; another client's request is a 404 (R7-confidential)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from fastapi.responses import FileResponse
from sqlmodel import Session, select

from api.audiences import CLIENT
from api.deps import CurrentPrincipal, SessionDep, SettingsDep, StaffPrincipal
from api.openapi import located
from api.pages import Cursor, Limit, Order, Page, Since, Until, filtered, page_of
from api.schemas.dda import ApprovalBody, DdaRequestBody, DdaRequestOut, HistoryOut, NdaBody
from api.scopes import scoped
from orchestrator.core.access import listed_customer
from orchestrator.core.models import DdaRequest
from orchestrator.workflows import dda

router = APIRouter(prefix="/v1/dda-requests", tags=["contract"], dependencies=[scoped("dda")])


def _out(session: Session, request: DdaRequest) -> DdaRequestOut:
    missing = dda.missing_gates(request)
    return DdaRequestOut(
        id=request.id, customer_id=request.customer_id, purpose=request.purpose,
        requested_by=request.requested_by, requested_at=request.requested_at, approval=request.approval,
        officer=request.officer, decided_at=request.decided_at, refusal_reason=request.refusal_reason,
        nda_reference=request.nda_reference, nda_signed_on=request.nda_signed_on,
        document_available=not missing, missing=missing,
        history=[HistoryOut(at=a.at, actor=a.actor, action=a.action, detail=a.detail)
                 for a in dda.history(session, request)])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DdaRequestOut, openapi_extra=CLIENT,
             responses={201: located("/v1/dda-requests/{id}")})
def create_dda_request(body: DdaRequestBody, session: SessionDep, principal: CurrentPrincipal) -> DdaRequestOut:
    """R2-dda: the client asks for the Statement of Applicability."""
    return _out(session, dda.create(session, principal, body.purpose))


@router.get("", response_model=Page[DdaRequestOut])
def list_dda_requests(
    session: SessionDep, principal: CurrentPrincipal,
    approval: Literal["pending", "approved", "refused"] | None = None,
    customer_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="staff only")] = None,
    since: Since = None, until: Until = None, limit: Limit = 50, cursor: Cursor = None, order: Order = "desc",
) -> Page[DdaRequestOut]:
    """Your requests (staff: everyone's), newest first, a page at a time."""
    query = filtered(select(DdaRequest), ((DdaRequest.customer_id, listed_customer(principal, customer_id)),
                                          (DdaRequest.approval, approval)),
                     DdaRequest.requested_at, since, until)
    rows, after = page_of(session, query, (DdaRequest.requested_at, DdaRequest.id), cursor, limit, order)
    return Page[DdaRequestOut](items=[_out(session, r) for r in rows], next=after)


@router.get("/{request_id}", response_model=DdaRequestOut)
def get_dda_request(request_id: str, session: SessionDep, principal: CurrentPrincipal) -> DdaRequestOut:
    return _out(session, dda.visible(session, principal, request_id))


@router.post("/{request_id}/approval", response_model=DdaRequestOut)
def decide_dda_request(request_id: str, body: ApprovalBody, session: SessionDep,
                       staff: StaffPrincipal) -> DdaRequestOut:
    """R2-dda: staff record the security officer's approval, or refusal with a reason."""
    request = dda.visible(session, staff, request_id)
    return _out(session, dda.decide(session, staff, request, body.approved, body.officer, body.reason))


@router.post("/{request_id}/nda", response_model=DdaRequestOut)
def record_dda_nda(request_id: str, body: NdaBody, session: SessionDep, staff: StaffPrincipal) -> DdaRequestOut:
    """R2-dda: staff record the signed NDA."""
    request = dda.visible(session, staff, request_id)
    return _out(session, dda.record_nda(session, staff, request, body.reference, body.signed_on))


@router.get("/{request_id}/document", response_class=FileResponse, openapi_extra=CLIENT,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_dda_document(request_id: str, session: SessionDep, settings: SettingsDep,
             principal: CurrentPrincipal) -> FileResponse:
    """R2-dda: the document, for the requesting client once approved and under NDA (422 naming
    R2-dda with the missing gates before; 404 when no document is configured)."""
    request = dda.visible(session, principal, request_id)
    path = dda.document(session, settings, principal, request)
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)
