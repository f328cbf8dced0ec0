"""Suspend a VPS (paused in memory) with a recorded reason, and who may lift a suspension.

Customers suspend their own VPS (reason ``customer``); staff may give ``billing``, ``abuse`` or
``security``; the non-payment workflow gives ``nonpayment`` (R8.7-default: lifted when the invoice
is paid).  A suspension imposed by staff is a measure only staff lift; it outlives a power-off
(orchestrator/engine/measures.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestrator.core.errors import Forbidden, InvalidRequest
from orchestrator.core.models import VpsStatus
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Operation, Params, Plan, Step, register

ClientReason = Literal["customer", "billing", "abuse", "security"]
Reason = Literal["customer", "billing", "abuse", "security", "nonpayment"]
REASONS: tuple[str, ...] = ("customer", "billing", "abuse", "security", "nonpayment")


class SuspendBody(Params):
    reason: ClientReason | None = Field(default=None, description="Customers: `customer` (the default); "
                                                                  "staff: `billing`, `abuse` or `security`")


class SuspendParams(Params):
    """What a workflow may give as well: ``nonpayment`` (R8.7-default)."""

    reason: Reason | None = None


def pause(ctx: Context) -> str:
    ctx.driver.suspend_domain(ctx.vps().id)
    return f"paused ({ctx.args(SuspendParams).reason})"


@register
class SuspendVps(Operation[SuspendParams]):
    """Pause the guest in memory, with a recorded reason."""

    kind = "suspend"
    route = "/suspend"
    params = SuspendBody
    job_params = SuspendParams
    allowed_from = frozenset({VpsStatus.running, VpsStatus.cut_off})
    steps = (Step("pause", pause),)

    @classmethod
    def check(cls, req: Request, params: SuspendParams) -> Plan | None:
        if params.reason is None:
            if req.principal.is_staff:
                raise InvalidRequest(f"reason must be one of {', '.join(REASONS[:4])}")
            params.reason = "customer"
        if not req.principal.is_staff and params.reason != "customer":
            raise Forbidden("customers suspend their own VPS with reason 'customer' only")
        return None

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=VpsStatus.suspended, suspend_reason=ctx.args(SuspendParams).reason,
                       suspended_by=ctx.requested_role)
