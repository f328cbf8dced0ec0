"""Start again a VPS that its record says is running but whose domain is not (R5.2-keep-running).

Asked by the reconciler (``orchestrator/reconciler.py``), never by a customer: the domain is
redefined from the record (a missing definition comes back, a cut-off VPS keeps its link down)
and started; the reconciler's incident is then resolved."""

from __future__ import annotations

from orchestrator import incidents
from orchestrator.db import session_scope
from orchestrator.models import Incident, VpsStatus
from orchestrator.operations.base import Context, Operation, Step, register
from orchestrator.operations.power import power_on, running_status


@register
class RecoverVps(Operation):
    kind = "recover"
    allowed_from = frozenset({VpsStatus.running, VpsStatus.cut_off})
    steps = (Step("power_on", power_on),)

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        """R5.2-keep-running, R5.4-fix-delay: running again is the solution of the incident."""
        ctx.update_vps(status=running_status(ctx))
        with session_scope(ctx.engine) as session:
            incident = session.get(Incident, ctx.params.get("incident_id"))
            if incident is not None and incident.resolved_at is None and incident.opened_by == incidents.RECONCILER:
                incidents.resolve(session, ctx.settings, incident,
                                  f"domain started again by the reconciler (job {ctx.job.id})",
                                  incidents.RECONCILER, commit=False)
