"""Incidents of a VPS and what they give the client (R5.4-fix-delay, R5.4-repeat,
R5.3-force-majeure, R12-suspend).

An incident is opened by staff or by the reconciler (R5.2-keep-running).  The provider has
48 heures ouvrées from its opening to find a solution (``orchestrator.contract.deadlines``; the
reading is the ``fix_delay_reading`` setting).  Each counted incident that is not resolved has a
deadline job (kind ``incident_deadline``, ``scheduled_at`` = its fix deadline): when it fires with
the incident still unresolved, it records the fact and emails the client that they may request
termination.  Resolving in time cancels it.  Force majeure (R5.3-force-majeure) makes an incident
not count at all, and while a force-majeure incident of the VPS lasts, the clock of the others
stops (R12-suspend): every change re-computes the deadlines of the VPS's incidents and moves,
cancels or schedules their jobs (``sync_deadlines``); the job itself re-checks when it wakes up
(``orchestrator/workflows/incident_deadline.py``).

Every function works in the caller's transaction.  The contract concerned is the VPS's
subscription: the incidents counted for a termination right
are those of its VPS.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from orchestrator.contract import incidents as rules
from orchestrator.contract.calendar import BusinessCalendar, to_paris, to_utc
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import Conflict, InvalidRequest
from orchestrator.core.models import Incident, Job, JobEvent, JobStatus, Subscription, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.engine import jobs
from orchestrator.notify import enqueue

DEADLINE_KIND = "incident_deadline"
RECONCILER = "reconciler"
MALFUNCTION_KEY = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


CAUSE = "incident"


def cause(incident: Incident) -> str:
    """What the incident's jobs (its deadline, the reconciler's restart) are asked for."""
    return jobs.cause(CAUSE, incident.id)


def calendar(settings: Settings) -> BusinessCalendar:
    return BusinessCalendar(settings.contract.calendar_subdivision or None)


def as_rule(incident: Incident) -> rules.Incident:
    assert incident.opened_at is not None
    return rules.Incident(opened_at=incident.opened_at, resolved_at=incident.resolved_at,
                          malfunction=incident.malfunction, force_majeure=incident.force_majeure)


def of_vps(session: Session, vps_id: str) -> list[Incident]:
    return list(session.exec(select(Incident).where(Incident.vps_id == vps_id)
                             .order_by(col(Incident.opened_at))).all())


def fix_deadline(incident: Incident, others: Sequence[Incident], settings: Settings,
                 now: datetime | None = None) -> datetime | None:
    """R5.4-fix-delay, R12-suspend: the incident's deadline (Europe/Paris), not counting the time
    during which a force-majeure incident of the same VPS lasted; None for a force-majeure incident
    (R5.3-force-majeure: it does not count) or while a force-majeure incident still stops the clock."""
    if incident.force_majeure:
        return None
    assert incident.opened_at is not None
    suspensions = rules._suspensions([as_rule(i) for i in others], now or utcnow())
    return rules.suspended_fix_deadline(incident.opened_at, calendar(settings), settings.contract.fix_delay_reading,
                                        suspensions)


def resolved_in_time(incident: Incident, deadline: datetime | None) -> bool:
    return (incident.resolved_at is not None and deadline is not None
            and to_utc(incident.resolved_at) <= to_utc(deadline))


def deadline_jobs(session: Session, vps_id: str) -> dict[str, list[Job]]:
    """The VPS's deadline jobs (any status) by incident id, oldest first."""
    found: dict[str, list[Job]] = {}
    rows = session.exec(select(Job).where(Job.vps_id == vps_id, Job.kind == DEADLINE_KIND)
                        .order_by(col(Job.created_at))).all()
    for job in rows:
        found.setdefault(str(jobs.cause_id(job, CAUSE)), []).append(job)
    return found


def sync_deadlines(session: Session, settings: Settings, vps_id: str, actor: str) -> None:
    """R5.4-fix-delay, R12-suspend, R5.3-force-majeure: recompute every incident's fix deadline
    of the VPS and make its deadline job match: one job at the deadline for a counted incident
    neither resolved in time nor stopped by force majeure (unless one already fired), none
    otherwise.  In the caller's transaction."""
    incidents = of_vps(session, vps_id)
    by_incident = deadline_jobs(session, vps_id)
    vps = session.get(Vps, vps_id)
    now = utcnow()
    for incident in incidents:
        deadline = fix_deadline(incident, incidents, settings, now)
        if incident.fix_deadline is None or deadline is None or to_utc(incident.fix_deadline) != to_utc(deadline):
            incident.fix_deadline = deadline
            session.add(incident)
        all_jobs = by_incident.get(incident.id, [])
        pending = [j for j in all_jobs if j.status in jobs.ACTIVE]
        fired = any(j.status == JobStatus.succeeded for j in all_jobs)
        wanted = (not incident.force_majeure and deadline is not None
                  and not resolved_in_time(incident, deadline) and not fired)
        if not wanted:
            if not pending:
                continue
            why = ("resolved in time" if resolved_in_time(incident, deadline) else
                   "force majeure: does not count (R5.3-force-majeure)" if incident.force_majeure else
                   "the clock is stopped by force majeure (R12-suspend)" if deadline is None else
                   "the deadline already fired")
            for job in pending:
                jobs.cancel(session, job, why, actor)
            continue
        assert deadline is not None
        if not pending:
            jobs.enqueue(session, DEADLINE_KIND, vps, {"incident_id": incident.id}, actor, 1,
                         settings.jobs.max_attempts, scheduled_at=to_utc(deadline), cause=cause(incident))
        for job in pending:
            if (job.scheduled_at is None or to_utc(job.scheduled_at) != to_utc(deadline)) and jobs.reschedule(
                    session, job, to_utc(deadline)):
                session.add(JobEvent(job_id=job.id, vps_id=vps_id, step="rescheduled", status="info", actor=actor,
                                     message=f"fix deadline moved to {deadline.isoformat()} (R12-suspend)"))


def _check_malfunction(key: str) -> str:
    if not MALFUNCTION_KEY.match(key):
        raise InvalidRequest(f"a malfunction is a stable key (lower case, digits, '_', '.', '-'), not {key[:64]!r}")
    return key


def open_incident(session: Session, settings: Settings, vps: Vps, malfunction: str, description: str,
                  opened_by: str, *, force_majeure: bool = False, force_majeure_note: str = "") -> Incident:
    """R5.4-fix-delay: record the incident, schedule its deadline job and tell the client; with
    force majeure (R5.3-force-majeure) it does not count and stops the other incidents' clocks
    (R12-suspend).  R5.4-repeat: when this occurrence gives the client a right to terminate, they
    are told at once."""
    _check_malfunction(malfunction)
    if vps.status in (VpsStatus.deleted, VpsStatus.deleting):
        raise Conflict(f"VPS {vps.id} is {vps.status.value}")
    if force_majeure and not force_majeure_note.strip():
        raise InvalidRequest("R5.3-force-majeure: say what the force majeure is (force_majeure_note)")
    before = _rights(session, settings, vps.id)
    incident = Incident(vps_id=vps.id, customer_id=vps.customer_id, malfunction=malfunction,
                        description=description, opened_by=opened_by, opened_at=utcnow(),
                        force_majeure=force_majeure, force_majeure_note=force_majeure_note if force_majeure else "")
    session.add(incident)
    session.flush()
    sync_deadlines(session, settings, vps.id, opened_by)
    enqueue(session, vps.customer_id, "incident_notice",
            {"vps_name": vps.name, "vps_id": vps.id, "malfunction": malfunction, "opened_at": incident.opened_at,
             "description": description, "fix_deadline": incident.fix_deadline, "force_majeure": force_majeure},
            vps_id=vps.id, settings=settings)
    _notify_new_repeat_right(session, settings, vps, before)
    return incident


def set_force_majeure(session: Session, settings: Settings, incident: Incident, flag: bool, note: str,
                      actor: str) -> Incident:
    """R5.3-force-majeure, R12-suspend: flag (with what it is) or unflag an incident as caused by
    force majeure; the deadlines of the VPS's incidents are recomputed and their jobs follow."""
    if flag and not note.strip():
        raise InvalidRequest("R5.3-force-majeure: say what the force majeure is (note)")
    incident.force_majeure = flag
    incident.force_majeure_note = note if flag else ""
    session.add(incident)
    session.flush()
    sync_deadlines(session, settings, incident.vps_id, actor)
    return incident


def resolve(session: Session, settings: Settings, incident: Incident, resolution: str, actor: str) -> Incident:
    """R5.4-fix-delay: the solution is found; the deadline job is called off when it is in time."""
    if incident.resolved_at is not None:
        raise Conflict(f"incident {incident.id} was resolved at {incident.resolved_at.isoformat()}")
    if not resolution.strip():
        raise InvalidRequest("say how the incident was resolved")
    incident.resolved_at = utcnow()
    incident.resolution = resolution
    session.add(incident)
    session.flush()
    sync_deadlines(session, settings, incident.vps_id, actor)
    return incident


def open_automatic(session: Session, vps_id: str, malfunction: str) -> Incident | None:
    """The reconciler's open incident of that malfunction on the VPS, if any."""
    return session.exec(select(Incident).where(Incident.vps_id == vps_id, Incident.malfunction == malfunction,
                                               Incident.opened_by == RECONCILER,
                                               col(Incident.resolved_at).is_(None))).first()


# --- termination right ------------------------------------------------------------------------

def _rights(session: Session, settings: Settings, vps_id: str) -> list[rules.TerminationRight]:
    return rules.termination_rights([as_rule(i) for i in of_vps(session, vps_id)], utcnow(), calendar(settings),
                                    settings.contract.fix_delay_reading)


def _notify_new_repeat_right(session: Session, settings: Settings, vps: Vps,
                             before: list[rules.TerminationRight]) -> None:
    """R5.4-repeat: email the client when the incident just opened gave a right that was not there."""
    known = {(r.rule, r.incidents[0].malfunction) for r in before if r.rule == "R5.4-repeat"}
    for right in _rights(session, settings, vps.id):
        key = (right.rule, right.incidents[0].malfunction)
        if right.rule != "R5.4-repeat" or key in known:
            continue
        enqueue(session, vps.customer_id, "termination_right_notice",
                {"vps_name": vps.name, "vps_id": vps.id, "malfunction": key[1], "right": "repeat",
                 "opened_at": right.incidents[-1].opened_at, "occurrences": len(right.incidents),
                 "first_opened_at": right.incidents[0].opened_at},
                vps_id=vps.id, settings=settings)


def termination_right_for_vps(session: Session, settings: Settings, vps_id: str) -> dict[str, Any] | None:
    """R5.4-fix-delay, R5.4-repeat, R5.3-force-majeure, R12-suspend: the first right the VPS's
    incidents give its client to request termination, at utcnow(), or None."""
    right = rules.termination_right([as_rule(i) for i in of_vps(session, vps_id)], utcnow(), calendar(settings),
                                    settings.contract.fix_delay_reading)
    if right is None:
        return None
    return {"rule": right.rule, "since": to_paris(right.since), "reason": right.reason}


def termination_right_for(session: Session, settings: Settings, subscription: Subscription) -> dict[str, Any] | None:
    """R5.4-fix-delay, R5.4-repeat: the client's right to request termination of this subscription
    (the contract concerned: its VPS's incidents), as {"rule", "since", "reason"}, or None."""
    if subscription.vps_id is None:
        return None
    return termination_right_for_vps(session, settings, subscription.vps_id)
