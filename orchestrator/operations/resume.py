"""Resume a suspended VPS.  A customer cannot resume a VPS that staff suspended."""

from __future__ import annotations

from typing import Any

from orchestrator.auth import Principal
from orchestrator.errors import Forbidden
from orchestrator.models import Role, Vps, VpsStatus
from orchestrator.operations.base import Context, Operation, Step, register
from orchestrator.operations.power import running_status


def unpause(ctx: Context) -> str:
    ctx.driver.resume_domain(ctx.vps().id)
    return "running again"


@register
class ResumeVps(Operation):
    kind = "resume"
    allowed_from = frozenset({VpsStatus.suspended})
    steps = (Step("unpause", unpause),)

    @classmethod
    def check_request(cls, principal: Principal, vps: Vps, params: dict[str, Any]) -> None:
        if not principal.is_staff and vps.suspended_by not in (None, Role.customer.value):
            raise Forbidden(f"this VPS was suspended by staff ({vps.suspend_reason}); only staff can resume it")

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=running_status(ctx), suspend_reason=None, suspended_by=None)
