"""R6.4-spam: the partial interruption after a spam complaint: outgoing mail (TCP 25, 465, 587,
over IPv4 and IPv6) is dropped by a libvirt nwfilter that the VPS's interface filter adds to
clean-traffic (orchestrator/compute/designer.py), everything else still flows.  Live and in the
definition; ``mail-unblock`` lifts it (clean-traffic stays).  Staff only."""

from __future__ import annotations

from pydantic import Field

from orchestrator.core.errors import Conflict
from orchestrator.core.models import VpsStatus
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Audience, NoParams, Operation, Params, Plan, Step, register
from orchestrator.operations.steps.network import apply_interface

ALLOWED = frozenset({VpsStatus.running, VpsStatus.cut_off, VpsStatus.stopped, VpsStatus.suspended})


class MailBlockBody(Params):
    complaint: str = Field(default="", max_length=500, description="The spam complaint behind it (R6.4-spam)")


def record_block(ctx: Context) -> str:
    ctx.update_vps(mail_blocked=True)
    return f"complaint: {ctx.args(MailBlockBody).complaint}"[:500]


def record_unblock(ctx: Context) -> str:
    ctx.update_vps(mail_blocked=False)
    return "mail open again"


@register
class MailBlockVps(Operation[MailBlockBody]):
    """R6.4-spam (staff): block outgoing mail (TCP 25, 465, 587, IPv4 and IPv6); everything else still flows."""

    kind = "mail-block"
    route = "/mail-block"
    params = MailBlockBody
    audience = Audience.staff
    allowed_from = ALLOWED
    steps = (Step("record_block", record_block), Step("apply_filter", apply_interface))

    @classmethod
    def check(cls, req: Request, params: MailBlockBody) -> Plan | None:
        if req.vps is not None and req.vps.mail_blocked:
            raise Conflict("outgoing mail is already blocked")
        return None


@register
class MailUnblockVps(Operation[NoParams]):
    """Lift the outgoing-mail block (staff)."""

    kind = "mail-unblock"
    route = "/mail-unblock"
    audience = Audience.staff
    allowed_from = ALLOWED
    steps = (Step("record_unblock", record_unblock), Step("apply_filter", apply_interface))

    @classmethod
    def check(cls, req: Request, params: NoParams) -> Plan | None:
        if req.vps is not None and not req.vps.mail_blocked:
            raise Conflict("outgoing mail is not blocked")
        return None
