"""``/v1/incidents``: incidents of a VPS and their fix deadline (R5.4-fix-delay), force majeure
(R5.3-force-majeure, R12-suspend), resolution; ``/v1/vps/{id}/termination-right`` (R5.4-fix-delay,
R5.4-repeat).  Staff open, flag and resolve; a customer reads their own (others' are a 404)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlmodel import Session, col, select

from api.deps import CurrentPrincipal, SessionDep, SettingsDep, StaffPrincipal
from api.openapi import located
from api.pages import Cursor, Limit, Order, Page, Since, Until, filtered, page_of
from api.schemas.incidents import (
    ForceMajeureBody,
    IncidentBody,
    IncidentOut,
    ResolveBody,
    TerminationRightOut,
    VpsTerminationRightOut,
)
from api.scopes import scoped
from orchestrator.contract.calendar import to_paris, to_utc
from orchestrator.core.access import listed_customer, visible, visible_vps
from orchestrator.core.auth import Principal
from orchestrator.core.clock import utcnow
from orchestrator.core.models import Incident, JobStatus
from orchestrator.workflows import incidents

router = APIRouter(tags=["incidents"], dependencies=[scoped("incidents")])

def _out(session: Session, incident: Incident) -> IncidentOut:
    pending = [j for j in incidents.deadline_jobs(session, incident.vps_id).get(incident.id, [])
               if j.status in (JobStatus.queued, JobStatus.running)]
    deadline = incident.fix_deadline
    passed = (deadline is not None and not incident.force_majeure and to_utc(deadline) < utcnow()
              and not incidents.resolved_in_time(incident, deadline))
    return IncidentOut(
        id=incident.id, vps_id=incident.vps_id, malfunction=incident.malfunction, description=incident.description,
        opened_by=incident.opened_by, opened_at=incident.opened_at,
        fix_deadline=to_paris(deadline) if deadline else None, deadline_passed=passed,
        force_majeure=incident.force_majeure, force_majeure_note=incident.force_majeure_note,
        resolved_at=incident.resolved_at, resolution=incident.resolution,
        deadline_job_id=pending[0].id if pending else None)


def _visible(session: Session, principal: Principal, incident_id: str) -> Incident:
    """R7-confidential: another customer's incident is as absent as a missing one."""
    return visible(session, Incident, incident_id, principal, "incident")


@router.post("/v1/incidents", status_code=status.HTTP_201_CREATED, response_model=IncidentOut,
             responses={201: located("/v1/incidents/{id}")})
def open_incident(body: IncidentBody, session: SessionDep, settings: SettingsDep,
                  staff: StaffPrincipal) -> IncidentOut:
    """R5.4-fix-delay (staff): open an incident on a VPS; its fix deadline is 48 heures ouvrées
    later, a deadline job waits for it and the client is emailed.  With `force_majeure` (and its
    note) it does not count (R5.3-force-majeure) and stops the other incidents' clocks (R12-suspend)."""
    vps = visible_vps(session, staff, body.vps_id)
    incident = incidents.open_incident(session, settings, vps, body.malfunction, body.description, str(staff),
                                       force_majeure=body.force_majeure, force_majeure_note=body.force_majeure_note)
    return _out(session, incident)


@router.get("/v1/incidents", response_model=Page[IncidentOut],
            responses={404: {"description": "`vps_id` names no VPS of yours"}})
def list_incidents(
    session: SessionDep, principal: CurrentPrincipal,
    vps_id: Annotated[str | None, Query(max_length=36)] = None,
    open_only: Annotated[bool, Query(alias="open", description="only those not resolved")] = False,
    malfunction: Annotated[str | None, Query(max_length=32)] = None,
    customer_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="staff only")] = None,
    since: Since = None, until: Until = None, limit: Limit = 50, cursor: Cursor = None, order: Order = "desc",
) -> Page[IncidentOut]:
    """Staff see every incident; a customer sees those of their own VPS; newest opened first, a
    page at a time."""
    query = select(Incident)
    if vps_id is not None:
        visible_vps(session, principal, vps_id)
    if open_only:
        query = query.where(col(Incident.resolved_at).is_(None))
    query = filtered(query, ((Incident.customer_id, listed_customer(principal, customer_id)),
                             (Incident.vps_id, vps_id), (Incident.malfunction, malfunction)),
                     Incident.opened_at, since, until)
    rows, after = page_of(session, query, (Incident.opened_at, Incident.id), cursor, limit, order)
    return Page[IncidentOut](items=[_out(session, i) for i in rows], next=after)


@router.get("/v1/incidents/{incident_id}", response_model=IncidentOut)
def get_incident(incident_id: str, session: SessionDep, principal: CurrentPrincipal) -> IncidentOut:
    return _out(session, _visible(session, principal, incident_id))


@router.post("/v1/incidents/{incident_id}/force-majeure", response_model=IncidentOut)
def flag_force_majeure(incident_id: str, body: ForceMajeureBody, session: SessionDep, settings: SettingsDep,
                       staff: StaffPrincipal) -> IncidentOut:
    """R5.3-force-majeure, R12-suspend (staff): flag or unflag force majeure; the deadlines of the
    VPS's incidents are recomputed and their jobs moved, cancelled or scheduled."""
    incident = _visible(session, staff, incident_id)
    return _out(session, incidents.set_force_majeure(session, settings, incident, body.force_majeure, body.note,
                                                     str(staff)))


@router.post("/v1/incidents/{incident_id}/resolve", response_model=IncidentOut)
def resolve_incident(incident_id: str, body: ResolveBody, session: SessionDep, settings: SettingsDep,
                     staff: StaffPrincipal) -> IncidentOut:
    """R5.4-fix-delay (staff): record the solution; in time, the deadline job is called off.
    An incident already resolved is a 409."""
    incident = _visible(session, staff, incident_id)
    return _out(session, incidents.resolve(session, settings, incident, body.resolution, str(staff)))


@router.get("/v1/vps/{vps_id}/termination-right", response_model=VpsTerminationRightOut)
def get_termination_right(vps_id: str, session: SessionDep, settings: SettingsDep,
                      principal: CurrentPrincipal) -> VpsTerminationRightOut:
    """R5.4-fix-delay, R5.4-repeat, R5.3-force-majeure: whether the VPS's incidents give its client
    the right to request termination (owner or staff)."""
    vps = visible_vps(session, principal, vps_id)
    right = incidents.termination_right_for_vps(session, settings, vps.id)
    return VpsTerminationRightOut(vps_id=vps.id, termination_right=TerminationRightOut(**right) if right else None)
