"""``/v1/vps/{id}/compromise``: a VPS reported hacked (R6.2-notice, R6.2-backup, R6.2-transfer,
R6.2-reinstall): staff report it, record the client's agreement and the paid services the client
ordered; the client reads the report and gives the new root keys."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import Session

from api.deps import CurrentPrincipal, SessionDep, SettingsDep, StaffPrincipal
from api.openapi import located
from api.schemas.compromise import AgreementBody, CompromiseBody, CompromiseOut, KeysBody, ServiceOrderBody
from api.scopes import scoped
from orchestrator.contract.deadlines import reinstall_not_before
from orchestrator.core.access import visible_vps
from orchestrator.core.errors import NotFound
from orchestrator.core.models import Compromise
from orchestrator.core.settings import Settings
from orchestrator.workflows import compromise

router = APIRouter(prefix="/v1/vps/{vps_id}/compromise", tags=["operations"], dependencies=[scoped("security")])


def _out(session: Session, settings: Settings, record: Compromise) -> CompromiseOut:
    not_before = reinstall_not_before(compromise.notice_time(session, record), compromise.calendar(settings))
    return CompromiseOut(
        id=record.id, vps_id=record.vps_id, reported_at=record.reported_at, reinstall_not_before=not_before,
        reinstall_job_id=record.reinstall_job_id, image=record.image,
        customer_agreement_at=record.customer_agreement_at, backup_invoice_id=record.backup_invoice_id,
        transfer_invoice_id=record.transfer_invoice_id, resolved_at=record.resolved_at)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CompromiseOut,
             responses={201: located("/v1/vps/{vps_id}/compromise")})
def report_compromise(vps_id: str, body: CompromiseBody, session: SessionDep, settings: SettingsDep,
                      staff: StaffPrincipal) -> CompromiseOut:
    """R6.2-notice (staff): the VPS was hacked.  Cuts it off (unless `cut_off: false`), emails the
    client, schedules the reinstall with the ordered OS and answers when it may run at the earliest."""
    vps = visible_vps(session, staff, vps_id)
    record, not_before = compromise.report(session, settings, staff, vps, body.details, body.cut_off,
                                           body.ssh_keys)
    out = _out(session, settings, record)
    out.reinstall_not_before = not_before
    return out


@router.get("", response_model=CompromiseOut)
def get_compromise(vps_id: str, session: SessionDep, settings: SettingsDep,
                   principal: CurrentPrincipal) -> CompromiseOut:
    """The open compromise report of the VPS (the customer sees their own)."""
    vps = visible_vps(session, principal, vps_id)
    record = compromise.open_compromise(session, vps)
    if record is None:
        raise NotFound("no open compromise report for this VPS")
    return _out(session, settings, record)


@router.post("/agreement", status_code=status.HTTP_200_OK, response_model=CompromiseOut)
def record_agreement(vps_id: str, body: AgreementBody, session: SessionDep, settings: SettingsDep,
                     staff: StaffPrincipal) -> CompromiseOut:
    """R6.2-notice (staff): record the client's written agreement to an earlier reinstall; the
    scheduled reinstall may then run at once."""
    vps = visible_vps(session, staff, vps_id)
    return _out(session, settings, compromise.record_agreement(session, vps, body.note))


@router.put("/ssh-keys", response_model=CompromiseOut,
            responses={409: {"description": "The reinstall has already started"}})
def set_reinstall_keys(vps_id: str, body: KeysBody, session: SessionDep, settings: SettingsDep,
                       principal: CurrentPrincipal) -> CompromiseOut:
    """R6.2-reinstall, R6.1-root: the client's public keys for root on the reinstalled system."""
    vps = visible_vps(session, principal, vps_id)
    return _out(session, settings, compromise.set_reinstall_keys(session, settings, vps, body.ssh_keys))


@router.post("/orders", status_code=status.HTTP_201_CREATED, response_model=CompromiseOut,
             responses={201: located("/v1/vps/{vps_id}/compromise")})
def order_service(vps_id: str, body: ServiceOrderBody, session: SessionDep, settings: SettingsDep,
                  staff: StaffPrincipal) -> CompromiseOut:
    """R6.2-backup, R6.2-transfer (staff): the client asked for a backup or a data transfer and the
    request was acknowledged: it is invoiced, and starts once the invoice is paid; the reinstall
    waits for it."""
    vps = visible_vps(session, staff, vps_id)
    compromise.order_service(session, staff, vps, body.kind, body.price_ht, body.request_note)
    record = compromise.open_compromise(session, vps)
    assert record is not None
    return _out(session, settings, record)
