"""Draining a host (staff): every VPS on it moves to another host, within the maintenance rules.

A drain is a maintenance of the host (orchestrator/workflows/maintenance.schedule): refused,
naming the rule, when its window is longer than an hour (R5.4-duration) or within a week of
another maintenance of one of its VPS (R5.4-frequency); otherwise recorded, and each customer is
sent the maintenance notice at once (R5.4-notice: beforehand).  The host is set ``draining`` (it
takes no new VPS) and each VPS's cold migration is asked as a deadline job at the window's
start (``cause``: the maintenance): the worker runs none of them before, each VPS's own
interruption is its shutdown, copy and boot, and they all start with the window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from orchestrator.compute.hosts import set_host_state
from orchestrator.core.auth import Principal
from orchestrator.core.errors import Conflict
from orchestrator.core.models import Host, Job, Maintenance, Vps
from orchestrator.core.settings import Settings
from orchestrator.engine import jobs
from orchestrator.engine.context import Request
from orchestrator.engine.operation import request
from orchestrator.operations.migrate import MigrateParams, MigrateVps
from orchestrator.workflows.maintenance import GONE, MaintenanceRequest, schedule


@dataclass(frozen=True)
class Drain:
    maintenance: Maintenance
    jobs: list[Job]


def drain(session: Session, settings: Settings, principal: Principal, host: Host, starts_at: datetime,
          duration_minutes: int, reason: str, to_host: str | None = None) -> Drain:
    """Schedule the move of every VPS off ``host`` at ``starts_at`` (see the module); in the
    caller's transaction."""
    on_host = list(session.exec(select(Vps).where(Vps.host_id == host.id, col(Vps.status).not_in(GONE))).all())
    for vps in on_host:
        if jobs.pending(session, vps.id, {MigrateVps.kind}):
            raise Conflict(f"VPS {vps.name} ({vps.id}) is already being moved")
    record = schedule(session, settings, principal, MaintenanceRequest(
        starts_at=starts_at, duration_minutes=duration_minutes, reason=reason, host_id=host.id))
    set_host_state(session, host, "draining", str(principal))
    asked = [request(Request(session, settings, principal, vps, cause=f"maintenance:{record.id}"), MigrateVps,
                     MigrateParams(to_host=to_host), scheduled_at=starts_at)
             for vps in on_host]
    return Drain(record, asked)
