"""``/v1/interruptions`` (staff): announce an interruption that is not normal maintenance
(R5.4-notice): every affected client is emailed beforehand."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlmodel import select

from api.deps import SessionDep, SettingsDep, StaffPrincipal
from api.openapi import located
from api.pages import Cursor, Limit, Order, Page, page_of
from api.routers.maintenance import HostFilter, StartsSince, StartsUntil, VpsFilter, scheduled, spec_of
from api.schemas.maintenance import InterruptionBody, InterruptionOut
from api.scopes import scoped
from orchestrator.core.errors import NotFound
from orchestrator.core.models import Maintenance, MaintenanceVps
from orchestrator.workflows import maintenance

router = APIRouter(prefix="/v1/interruptions", tags=["maintenance"], dependencies=[scoped("maintenance")])


def _out(session: SessionDep, record: Maintenance) -> InterruptionOut:
    vps_ids = session.exec(select(MaintenanceVps.vps_id).where(MaintenanceVps.maintenance_id == record.id)).all()
    notices = maintenance.notices(session, record)
    pending = sum(1 for n in notices if n.sent_at is None)
    return InterruptionOut(id=record.id, host_id=record.host_id, vps_ids=sorted(vps_ids), starts_at=record.starts_at,
                           duration_minutes=record.duration_minutes, reason=record.reason,
                           created_by=record.created_by, notices_sent=pending == 0, notices_pending=pending)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=InterruptionOut,
             responses={201: located("/v1/interruptions/{id}")})
def announce_interruption(body: InterruptionBody, session: SessionDep, settings: SettingsDep,
             principal: StaffPrincipal) -> InterruptionOut:
    """Recorded only for a start in the future (otherwise 422 naming R5.4-notice); the notices
    are queued at once and sent by the outbox."""
    return _out(session, maintenance.announce_interruption(session, settings, principal, spec_of(body)))


@router.get("", response_model=Page[InterruptionOut])
def list_interruptions(
    session: SessionDep, _staff: StaffPrincipal, host_id: HostFilter = None, vps_id: VpsFilter = None,
    since: StartsSince = None, until: StartsUntil = None, limit: Limit = 50, cursor: Cursor = None,
    order: Order = "desc",
) -> Page[InterruptionOut]:
    """Interruptions, the latest to start first (``?order=asc``: the soonest first), a page at a time."""
    query = scheduled("interruption", host_id, vps_id, since, until)
    rows, after = page_of(session, query, (Maintenance.starts_at, Maintenance.id), cursor, limit, order)
    return Page[InterruptionOut](items=[_out(session, m) for m in rows], next=after)


@router.get("/{interruption_id}", response_model=InterruptionOut)
def get_interruption(interruption_id: str, session: SessionDep, _staff: StaffPrincipal) -> InterruptionOut:
    record = session.get(Maintenance, interruption_id)
    if record is None or record.kind != "interruption":
        raise NotFound(f"no interruption {interruption_id}")
    return _out(session, record)
