"""R5.5-cutoff: cut a VPS's network (staff only, with a reason).  The link goes down in the
running domain and in its definition, and stays down across stop, start, reboot and reinstall
until ``reconnect``: the record's ``cut_off`` flag drives every later definition."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestrator.core.clock import utcnow
from orchestrator.core.errors import Conflict
from orchestrator.core.models import VpsStatus
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Audience, Operation, Params, Plan, Step, register
from orchestrator.operations.steps.network import apply_interface
from orchestrator.operations.steps.provision import notify_once

Reason = Literal["hacked", "security_update_missing", "dangerous_application", "abuse"]
REASONS: tuple[str, ...] = ("hacked", "security_update_missing", "dangerous_application", "abuse")


class CutOffBody(Params):
    reason: Reason
    details: str = Field(default="", max_length=2000, description="Told to the client in the cut-off notice")


class CutOffParams(CutOffBody):
    """A workflow may cut off without the cut-off notice: the compromise notice says it (R6.2-notice)."""

    notice: bool = True


def record_cut_off(ctx: Context) -> str:
    reason = ctx.args(CutOffParams).reason
    ctx.update_vps(cut_off=True, cut_off_reason=reason)
    return f"reason: {reason}"


@register
class CutOffVps(Operation[CutOffParams]):
    """R5.5-cutoff (staff): cut the network, live and persistently, until reconnect."""

    kind = "cutoff"
    route = "/cutoff"
    params = CutOffBody
    job_params = CutOffParams
    audience = Audience.staff
    rule = "R5.5-cutoff"
    allowed_from = frozenset({VpsStatus.running, VpsStatus.stopped, VpsStatus.suspended})
    steps = (Step("record_cut_off", record_cut_off), Step("link_down", apply_interface))

    @classmethod
    def check(cls, req: Request, params: CutOffParams) -> Plan | None:
        if req.vps is not None and req.vps.cut_off:
            raise Conflict("the VPS is already cut off")
        return None

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        vps, args = ctx.vps(), ctx.args(CutOffParams)
        # R5.5-cutoff: without notice, but the client is told at once why.
        if args.notice:
            notify_once(ctx, "cutoff_notice", {"vps_name": vps.name, "vps_id": vps.id, "reason": args.reason,
                                               "cut_off_at": utcnow(), "details": args.details})
        if vps.status == VpsStatus.running:
            ctx.update_vps(status=VpsStatus.cut_off)
