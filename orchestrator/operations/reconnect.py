"""R5.5-reconnect: restore a cut-off VPS's network once staff record the corrective measures."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from orchestrator.core.clock import utcnow
from orchestrator.core.errors import Conflict
from orchestrator.core.models import VpsStatus
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Audience, Operation, Params, Plan, Step, register
from orchestrator.operations.steps.network import apply_interface
from orchestrator.operations.steps.provision import notify_once


class ReconnectBody(Params):
    corrective_measures: Annotated[str, StringConstraints(
        strip_whitespace=True, min_length=1, max_length=2000, pattern=r"\S")]


def record_reconnect(ctx: Context) -> str:
    ctx.update_vps(cut_off=False, cut_off_reason=None)
    return f"corrective measures: {ctx.args(ReconnectBody).corrective_measures}"


@register
class ReconnectVps(Operation[ReconnectBody]):
    """R5.5-reconnect (staff): restore the network once corrective measures are recorded."""

    kind = "reconnect"
    route = "/reconnect"
    params = ReconnectBody
    audience = Audience.staff
    rule = "R5.5-reconnect"
    allowed_from = frozenset({VpsStatus.cut_off, VpsStatus.stopped, VpsStatus.suspended})
    steps = (Step("record_reconnect", record_reconnect), Step("link_up", apply_interface))

    @classmethod
    def check(cls, req: Request, params: ReconnectBody) -> Plan | None:
        if req.vps is not None and not req.vps.cut_off:
            raise Conflict("the VPS is not cut off")
        return None

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        if ctx.vps().status == VpsStatus.cut_off:
            ctx.update_vps(status=VpsStatus.running)
        vps = ctx.vps()
        notify_once(ctx, "reconnect_notice", {"vps_name": vps.name, "vps_id": vps.id, "reconnected_at": utcnow(),
                                              "corrective_measures": ctx.args(ReconnectBody).corrective_measures})
