"""Resume a suspended VPS.  A client cannot resume what staff suspended, nor a VPS interrupted
for non-payment (orchestrator/engine/measures.py)."""

from __future__ import annotations

from orchestrator.core.models import VpsStatus
from orchestrator.engine.context import Context
from orchestrator.engine.operation import NoParams, Operation, Step, register
from orchestrator.operations.steps.power import running_status


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
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=running_status(ctx), suspend_reason=None, suspended_by=None)
