"""Suspend a VPS (paused in memory) with a recorded reason.  Customers suspend for themselves
only (reason ``customer``); staff may give ``billing``, ``abuse``, ``security`` or ``nonpayment``
(R8.7-default: the interruption of a payment default, lifted when the invoice is paid)."""

from __future__ import annotations

from typing import Any

from orchestrator.auth import Principal
from orchestrator.errors import Forbidden, InvalidRequest
from orchestrator.models import Vps, VpsStatus
from orchestrator.operations.base import Context, Operation, Step, register

REASONS = ("customer", "billing", "abuse", "security", "nonpayment")


def pause(ctx: Context) -> str:
    ctx.driver.suspend_domain(ctx.vps().id)
    return f"paused ({ctx.params['reason']})"


@register
class SuspendVps(Operation):
    kind = "suspend"
    allowed_from = frozenset({VpsStatus.running, VpsStatus.cut_off})
    steps = (Step("pause", pause),)

    @classmethod
    def check_request(cls, principal: Principal, vps: Vps, params: dict[str, Any]) -> None:
        reason = params.setdefault("reason", "customer" if not principal.is_staff else None)
        if reason not in REASONS:
            raise InvalidRequest(f"reason must be one of {', '.join(REASONS)}")
        if not principal.is_staff and reason != "customer":
            raise Forbidden("customers suspend their own VPS with reason 'customer' only")

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=VpsStatus.suspended, suspend_reason=ctx.params["reason"],
                       suspended_by=ctx.params.get("requested_role"))
