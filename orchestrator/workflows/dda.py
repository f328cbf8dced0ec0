"""R2-dda: the Statement of Applicability (Déclaration d'Applicabilité, DDA) is disclosed only on
request, after the security officer's approval and a signed non-disclosure agreement.

A client asks (``DdaRequest``, with the purpose); staff record the security officer's decision
(who approved, when; or a refusal with its reason) and the signed NDA (its reference and date).
Only when both gates are passed may the requesting client download the document (the file named
by ``VPSCTL_DDA_DOCUMENT_PATH``); before that the download is refused naming R2-dda and saying
which gate is missing. Every step and every download is an Audit row (``dda.*``, the request id
first in its detail) shown as the request's history.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlmodel import Session, col, select

from orchestrator.contract.calendar import to_paris
from orchestrator.core import access
from orchestrator.core.access import owned
from orchestrator.core.auth import Principal, require_client, require_staff
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import Conflict, ContractRefusal, InvalidRequest, NotFound
from orchestrator.core.models import Audit, DdaRequest
from orchestrator.core.settings import Settings

RULE = "R2-dda"


def _audit(session: Session, principal: Principal, request: DdaRequest, action: str, detail: str = "") -> None:
    session.add(Audit(actor=str(principal), action=f"dda.{action}",
                      detail=f"{request.id} {detail}".strip()[:500]))


def history(session: Session, request: DdaRequest) -> list[Audit]:
    rows = session.exec(select(Audit).where(col(Audit.action).startswith("dda."),
                                            col(Audit.detail).startswith(request.id))
                        .order_by(col(Audit.at), col(Audit.id))).all()
    return list(rows)


def create(session: Session, principal: Principal, purpose: str) -> DdaRequest:
    """R2-dda: disclosure is on the client's request only."""
    require_client(principal, principal.customer_id, "the Statement of Applicability is requested by the client")
    assert principal.customer_id is not None
    if not purpose.strip():
        raise InvalidRequest("purpose must say why the Statement of Applicability is needed")
    request = DdaRequest(customer_id=principal.customer_id, purpose=purpose.strip(), requested_by=str(principal))
    session.add(request)
    session.flush()
    _audit(session, principal, request, "requested")
    return request


def visible(session: Session, principal: Principal, request_id: str) -> DdaRequest:
    """R7-confidential: another client's request is as absent as a missing one."""
    return access.visible(session, DdaRequest, request_id, principal, "DDA request")


def listing(session: Session, principal: Principal) -> list[DdaRequest]:
    query = owned(select(DdaRequest), DdaRequest.customer_id, principal)
    return list(session.exec(query.order_by(col(DdaRequest.requested_at))).all())


def decide(session: Session, principal: Principal, request: DdaRequest, approved: bool, officer: str,
           reason: str) -> DdaRequest:
    """R2-dda, first gate: staff record the security officer's approval, or refusal with a reason."""
    require_staff(principal, "the security officer's decision is recorded by staff")
    if request.approval != "pending":
        raise Conflict(f"this request is already {request.approval}")
    if not officer.strip():
        raise InvalidRequest("officer must name the security officer who decided")
    if not approved and not reason.strip():
        raise InvalidRequest("a refusal needs its reason")
    request.approval = "approved" if approved else "refused"
    request.officer, request.decided_at, request.decided_by = officer.strip(), utcnow(), str(principal)
    request.refusal_reason = "" if approved else reason.strip()
    session.add(request)
    _audit(session, principal, request, request.approval,
           f"by {request.officer}" + ("" if approved else f": {request.refusal_reason}"))
    return request


def record_nda(session: Session, principal: Principal, request: DdaRequest, reference: str,
               signed_on: date) -> DdaRequest:
    """R2-dda, second gate: staff record the signed non-disclosure agreement."""
    require_staff(principal, "the signed NDA is recorded by staff")
    if request.approval == "refused":
        raise Conflict("this request was refused by the security officer")
    if request.nda_reference is not None:
        raise Conflict(f"an NDA is already recorded for this request ({request.nda_reference})")
    if not reference.strip():
        raise InvalidRequest("reference must identify the signed NDA")
    if signed_on > to_paris(utcnow()).date():
        raise InvalidRequest("signed_on is in the future")
    request.nda_reference, request.nda_signed_on = reference.strip(), signed_on
    request.nda_recorded_by, request.nda_recorded_at = str(principal), utcnow()
    session.add(request)
    _audit(session, principal, request, "nda_recorded", f"{request.nda_reference} signed on {signed_on.isoformat()}")
    return request


def missing_gates(request: DdaRequest) -> list[str]:
    missing = []
    if request.approval == "refused":
        missing.append(f"the security officer refused it ({request.refusal_reason})")
    elif request.approval != "approved":
        missing.append("the security officer's approval")
    if request.nda_reference is None:
        missing.append("a signed NDA")
    return missing


def document(session: Session, settings: Settings, principal: Principal, request: DdaRequest) -> Path:
    """R2-dda: the document, for the requesting client only, once both gates are passed; the
    download is recorded."""
    require_client(principal, request.customer_id,
                   "the Statement of Applicability is disclosed to the requesting client only")
    missing = missing_gates(request)
    if missing:
        raise ContractRefusal(RULE, "the Statement of Applicability is disclosed only after the security "
                                    f"officer's approval and a signed NDA; missing: {'; '.join(missing)}")
    path = settings.contract.dda_document_path
    if path is None or not path.is_file():
        raise NotFound("the Statement of Applicability is not available on this server")
    _audit(session, principal, request, "downloaded", path.name)
    return path
