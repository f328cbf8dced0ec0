"""Start a stopped VPS.  The domain is redefined from the record first, so a cut-off VPS starts
with its link down (R5.5-cutoff) and sizes changed while stopped apply.

R10-after, R8.7-default: a client cannot start the VPS of a terminated subscription, of one
interrupted for non-payment, or one staff suspended then stopped (orchestrator/engine/measures.py)."""

from __future__ import annotations

from orchestrator.core.models import VpsStatus
from orchestrator.engine.context import Context
from orchestrator.engine.operation import NoParams, Operation, Step, register
from orchestrator.operations.steps.power import power_on, running_status


@register
class StartVps(Operation[NoParams]):
    """Power on a stopped VPS; refused naming R10-after to the client once its subscription ended."""

    kind = "start"
    route = "/start"
    allowed_from = frozenset({VpsStatus.stopped})
    steps = (Step("power_on", power_on),)

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        """Running; a suspension that outlived the power-off is over (only staff start such a VPS)."""
        ctx.update_vps(status=running_status(ctx), suspend_reason=None, suspended_by=None)
