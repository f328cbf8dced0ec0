"""The fix deadline of an incident (R5.4-fix-delay): a deadline job scheduled at the incident's
48 heures ouvrées.  When it fires with the incident unresolved, it records the fact in its events
and emails the client that they may request termination of the contract concerned.  No hypervisor
step.  Force majeure (R5.3-force-majeure) makes it moot; a force-majeure incident of the VPS that
lasted (R12-suspend) moves the deadline, and the job waits again (Deferred)."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from orchestrator.contract.calendar import to_paris, to_utc
from orchestrator.core.clock import utcnow
from orchestrator.core.db import session_scope
from orchestrator.core.errors import OperationFailed
from orchestrator.core.models import Incident, Outbox, Vps, VpsStatus
from orchestrator.engine.context import Context
from orchestrator.engine.operation import Audience, Deferred, Operation, Params, Step, register
from orchestrator.notify import enqueue
from orchestrator.workflows import incidents

# While a force-majeure incident still stops the clock, look again this often (every change to
# the VPS's incidents also reschedules the job at once).
RECHECK_WHILE_SUSPENDED = timedelta(hours=1)


class DeadlineParams(Params):
    incident_id: str


def _incident(ctx: Context) -> tuple[Incident, list[Incident]]:
    with session_scope(ctx.engine) as session:
        incident_id = ctx.args(DeadlineParams).incident_id
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise OperationFailed(f"incident {incident_id} is not recorded")
        others = incidents.of_vps(session, incident.vps_id)
        session.expunge_all()
        return incident, others


def notify_termination_right(ctx: Context) -> str:
    """R5.4-fix-delay: the deadline passed without a solution: tell the client, once."""
    incident, others = _incident(ctx)
    deadline = incidents.fix_deadline(incident, others, ctx.settings)
    if incident.force_majeure:
        return "force majeure: the incident does not count (R5.3-force-majeure)"
    if incidents.resolved_in_time(incident, deadline):
        return f"resolved in time, at {incident.resolved_at.isoformat() if incident.resolved_at else ''}"
    assert deadline is not None
    with session_scope(ctx.engine) as session:
        vps = session.get(Vps, incident.vps_id)
        if vps is None or vps.status in (VpsStatus.deleted, VpsStatus.deleting):
            return "the VPS is deleted: no contract left to terminate"
        if session.exec(select(Outbox).where(Outbox.job_id == ctx.job.id)).first() is None:
            enqueue(session, vps.customer_id, "termination_right_notice",
                    {"vps_name": vps.name, "vps_id": vps.id, "malfunction": incident.malfunction,
                     "opened_at": incident.opened_at, "fix_deadline": deadline, "description": incident.description,
                     "right": "fix_delay"},
                    vps_id=vps.id, job_id=ctx.job.id, settings=ctx.settings)
    state = "still unresolved" if incident.resolved_at is None else f"resolved late, at {incident.resolved_at}"
    return (f"R5.4-fix-delay: no solution to incident {incident.id} ({incident.malfunction}) by "
            f"{to_paris(deadline).isoformat()} ({state}): the client may request termination; notified")


@register
class IncidentDeadline(Operation[DeadlineParams]):
    kind = incidents.DEADLINE_KIND
    params = DeadlineParams
    audience = Audience.system
    rule = "R5.4-fix-delay"
    allowed_from = frozenset(VpsStatus)
    steps = (Step("termination_right", notify_termination_right),)

    @classmethod
    def begin(cls, ctx: Context) -> None:
        """R12-suspend: wait again when force majeure moved the deadline or still stops the clock."""
        incident, others = _incident(ctx)
        if incident.force_majeure or incident.resolved_at is not None:
            return
        deadline = incidents.fix_deadline(incident, others, ctx.settings)
        now = utcnow()
        if deadline is None:
            raise Deferred(now + RECHECK_WHILE_SUSPENDED, "the fix-delay clock is stopped by force majeure "
                                                          "(R12-suspend)")
        if to_utc(deadline) > now:
            raise Deferred(to_utc(deadline), "force majeure moved the fix deadline (R12-suspend)")
