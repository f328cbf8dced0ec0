"""Start again a VPS that its record says is running but whose domain is not (R5.2-keep-running).

Asked by the reconciler (orchestrator/workflows/reconciler.py), never by a client: the domain is
redefined from the record (a missing definition comes back, a cut-off VPS keeps its link down)
and started.  The reconciler resolves its incident when it hears the job succeeded."""

from __future__ import annotations

from orchestrator.core.models import VpsStatus
from orchestrator.engine.context import Context
from orchestrator.engine.operation import Audience, NoParams, Operation, Step, register
from orchestrator.operations.steps.power import power_on, running_status


@register
class RecoverVps(Operation[NoParams]):
    kind = "recover"
    audience = Audience.system
    allowed_from = frozenset({VpsStatus.running, VpsStatus.cut_off})
    steps = (Step("power_on", power_on),)

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=running_status(ctx))
