"""R5.5-reconnect: restore a cut-off VPS's network once staff record the corrective measures."""

from __future__ import annotations

from typing import Any

from orchestrator.auth import Principal
from orchestrator.clock import utcnow
from orchestrator.errors import Conflict, Forbidden, InvalidRequest
from orchestrator.models import Vps, VpsStatus
from orchestrator.operations.base import Context, Operation, Step, register
from orchestrator.operations.network import apply_interface
from orchestrator.operations.provision import notify_once


def record_reconnect(ctx: Context) -> str:
    ctx.update_vps(cut_off=False, cut_off_reason=None)
    return f"corrective measures: {ctx.params['corrective_measures']}"


@register
class ReconnectVps(Operation):
    kind = "reconnect"
    allowed_from = frozenset({VpsStatus.cut_off, VpsStatus.stopped, VpsStatus.suspended})
    steps = (Step("record_reconnect", record_reconnect), Step("link_up", apply_interface))

    @classmethod
    def check_request(cls, principal: Principal, vps: Vps, params: dict[str, Any]) -> None:
        if not principal.is_staff:
            raise Forbidden("only staff reconnect a VPS (R5.5-reconnect)")
        if not vps.cut_off:
            raise Conflict("the VPS is not cut off")
        measures = params.get("corrective_measures")
        if not isinstance(measures, str) or not measures.strip():
            raise InvalidRequest("R5.5-reconnect: record the client's corrective measures")

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        if ctx.vps().status == VpsStatus.cut_off:
            ctx.update_vps(status=VpsStatus.running)
        vps = ctx.vps()
        notify_once(ctx, "reconnect_notice", {"vps_name": vps.name, "vps_id": vps.id, "reconnected_at": utcnow(),
                                              "corrective_measures": ctx.params["corrective_measures"]})
