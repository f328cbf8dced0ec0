"""Stop a VPS: ACPI power button and a wait (``VPSCTL_STOP_TIMEOUT_SECONDS``), then forced off;
``{"force": true}`` skips the wait."""

from __future__ import annotations

from pydantic import Field

from orchestrator.core.models import VpsStatus
from orchestrator.engine.context import Context
from orchestrator.engine.measures import STAFF_ROLES
from orchestrator.engine.operation import Operation, Params, Step, register
from orchestrator.operations.steps.power import power_off


class StopBody(Params):
    force: bool = Field(default=False, description="Skip the graceful shutdown and power off at once")


def shut_down(ctx: Context) -> str:
    return power_off(ctx, force=ctx.args(StopBody).force)


@register
class StopVps(Operation[StopBody]):
    """Graceful shutdown, forced after a timeout; `force` skips the wait."""

    kind = "stop"
    route = "/stop"
    params = StopBody
    allowed_from = frozenset({VpsStatus.running, VpsStatus.cut_off, VpsStatus.suspended})
    steps = (Step("power_off", shut_down),)

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        """Stopped; a client's own suspension ends with the power-off, a staff measure does not."""
        vps = ctx.vps()
        if vps.suspended_by in STAFF_ROLES:
            ctx.update_vps(status=VpsStatus.stopped)
        else:
            ctx.update_vps(status=VpsStatus.stopped, suspend_reason=None, suspended_by=None)
