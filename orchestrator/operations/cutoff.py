"""R5.5-cutoff: cut a VPS's network (staff only, with a reason).  The link goes down in the
running domain and in its definition, and stays down across stop, start, reboot and reinstall
until ``reconnect``: the record's ``cut_off`` flag drives every later definition."""

from __future__ import annotations

from typing import Any

from orchestrator.auth import Principal
from orchestrator.clock import utcnow
from orchestrator.errors import Conflict, Forbidden, InvalidRequest
from orchestrator.models import Vps, VpsStatus
from orchestrator.operations.base import Context, Operation, Step, register
from orchestrator.operations.network import apply_interface
from orchestrator.operations.provision import notify_once

REASONS = ("hacked", "security_update_missing", "dangerous_application", "abuse")


def record_cut_off(ctx: Context) -> str:
    ctx.update_vps(cut_off=True, cut_off_reason=ctx.params["reason"])
    return f"reason: {ctx.params['reason']}"


@register
class CutOffVps(Operation):
    kind = "cutoff"
    allowed_from = frozenset({VpsStatus.running, VpsStatus.stopped, VpsStatus.suspended})
    steps = (Step("record_cut_off", record_cut_off), Step("link_down", apply_interface))

    @classmethod
    def check_request(cls, principal: Principal, vps: Vps, params: dict[str, Any]) -> None:
        if not principal.is_staff:
            raise Forbidden("only staff cut a VPS off (R5.5-cutoff)")
        if params.get("reason") not in REASONS:
            raise InvalidRequest(f"R5.5-cutoff: reason must be one of {', '.join(REASONS)}")
        if vps.cut_off:
            raise Conflict("the VPS is already cut off")

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        vps = ctx.vps()
        # R5.5-cutoff: without notice, but the client is told at once why (a compromise report
        # tells it in its own notice, R6.2-notice).
        if ctx.params.get("notice", True):
            notify_once(ctx, "cutoff_notice", {"vps_name": vps.name, "vps_id": vps.id, "reason": ctx.params["reason"],
                                               "cut_off_at": utcnow(), "details": ctx.params.get("details", "")})
        if ctx.vps().status == VpsStatus.running:
            ctx.update_vps(status=VpsStatus.cut_off)
