"""Resume a suspended VPS.  A customer cannot resume a VPS that staff suspended
(``suspend.may_lift``)."""

from __future__ import annotations

from orchestrator.core.errors import Forbidden
from orchestrator.core.models import VpsStatus
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import NoParams, Operation, Step, register
from orchestrator.operations.steps.power import running_status
from orchestrator.operations.suspend import may_lift


def unpause(ctx: Context) -> str:
    ctx.driver.resume_domain(ctx.vps().id)
    return "running again"


@register
class ResumeVps(Operation[NoParams]):
    """Resume a suspended VPS (a customer cannot resume what staff suspended)."""

    kind = "resume"
    route = "/resume"
    allowed_from = frozenset({VpsStatus.suspended})
    steps = (Step("unpause", unpause),)

    @classmethod
    def authorize(cls, req: Request) -> None:
        super().authorize(req)
        if req.vps is not None and not may_lift(req.principal, req.vps):
            raise Forbidden(f"this VPS was suspended by staff ({req.vps.suspend_reason}); only staff can resume it")

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=running_status(ctx), suspend_reason=None, suspended_by=None)
