"""Evacuating a host that is down (staff, R5.2-keep-running): each of its VPS is rebuilt on another
host from the latest copy of its backup kept off the lost host (operations/evacuate.py).

Refused (409) while the host answers: a host that answers keeps its VPS and is drained instead
(R5.4).  The host is recorded ``unreachable`` (it takes no VPS), and one ``evacuate`` job is asked
per VPS; a VPS that cannot be rebuilt (no backup copied off the host, no room elsewhere) is
named with the reason and stays recorded on its host, to come back with it."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from orchestrator.compute.hosts import Drivers, HostAt, set_host_state
from orchestrator.core.auth import Principal
from orchestrator.core.errors import Conflict, HypervisorError, VpsctlError
from orchestrator.core.models import Host, Incident, Job, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.engine import events, jobs
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import request
from orchestrator.operations.evacuate import EvacuateParams, EvacuateVps
from orchestrator.workflows import incidents

HELD = (VpsStatus.running, VpsStatus.stopped, VpsStatus.cut_off, VpsStatus.suspended)


@dataclass
class Evacuation:
    jobs: list[Job] = field(default_factory=list)
    left: list[tuple[Vps, str]] = field(default_factory=list)


def answers(host: Host) -> str | None:
    """The host's hostname if its libvirtd answers now (a connection of its own, not a cached one)."""
    drivers = Drivers()
    try:
        return drivers.for_host(HostAt(host.uri, host.ssh_host_key)).host_info().hostname
    except HypervisorError:
        return None
    finally:
        drivers.close()


def evacuate(session: Session, settings: Settings, principal: Principal, host: Host, reason: str,
             to_host: str | None = None) -> Evacuation:
    """Ask the rebuild of every VPS of ``host`` elsewhere (see the module); in the caller's transaction."""
    if answers(host) is not None:
        raise Conflict(f"host {host.name} answers: its VPS stay there; drain it to move them (R5.4)")
    set_host_state(session, host, "unreachable", str(principal))
    done = Evacuation()
    on_host = session.exec(select(Vps).where(Vps.host_id == host.id, col(Vps.status).in_(HELD))
                           .order_by(col(Vps.created_at))).all()
    for vps in on_host:
        if jobs.pending(session, vps.id, {EvacuateVps.kind}):
            done.left.append((vps, "an evacuation of it is asked already"))
            continue
        try:
            with session.begin_nested():
                done.jobs.append(request(Request(session, settings, principal, vps), EvacuateVps,
                                         EvacuateParams(to_host=to_host, reason=reason)))
        except VpsctlError as exc:
            done.left.append((vps, exc.detail))
    return done


@events.on_succeeded(EvacuateVps.kind)
def _rebuilt(ctx: Context) -> None:
    """R5.4-fix-delay: running again on another host is the solution of the incidents its host's
    failure opened."""
    with ctx.transaction() as session:
        for incident in session.exec(select(Incident).where(
                Incident.vps_id == ctx.job.vps_id, Incident.opened_by == incidents.RECONCILER,
                col(Incident.resolved_at).is_(None))).all():
            incidents.resolve(session, ctx.settings, incident,
                              f"rebuilt on another host from its latest backup (job {ctx.job.id})",
                              incidents.RECONCILER)
