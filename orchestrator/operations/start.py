"""Start a stopped VPS.  The domain is redefined from the record first, so a cut-off VPS starts
with its link down (R5.5-cutoff) and sizes changed while stopped apply."""

from __future__ import annotations

from orchestrator.models import VpsStatus
from orchestrator.operations.base import Context, Operation, Step, register
from orchestrator.operations.power import power_on, running_status


@register
class StartVps(Operation):
    kind = "start"
    allowed_from = frozenset({VpsStatus.stopped})
    steps = (Step("power_on", power_on),)

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=running_status(ctx))
