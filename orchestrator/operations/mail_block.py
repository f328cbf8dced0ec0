"""R6.4-spam: the partial interruption after a spam complaint: outgoing mail (TCP 25, 465, 587)
is dropped by a libvirt nwfilter on the VPS's interface, everything else still flows.  Live and
in the definition; ``mail-unblock`` lifts it.  Staff only."""

from __future__ import annotations

from typing import Any

from orchestrator.auth import Principal
from orchestrator.errors import Conflict, Forbidden
from orchestrator.models import Vps, VpsStatus
from orchestrator.operations.base import Context, Operation, Step, register
from orchestrator.operations.network import apply_interface

ALLOWED = frozenset({VpsStatus.running, VpsStatus.cut_off, VpsStatus.stopped, VpsStatus.suspended})


def record_block(ctx: Context) -> str:
    ctx.update_vps(mail_blocked=True)
    return f"complaint: {ctx.params.get('complaint', '')}"[:500]


def record_unblock(ctx: Context) -> str:
    ctx.update_vps(mail_blocked=False)
    return "mail open again"


def _staff(principal: Principal) -> None:
    if not principal.is_staff:
        raise Forbidden("only staff block or unblock a VPS's mail (R6.4-spam)")


@register
class MailBlockVps(Operation):
    kind = "mail-block"
    allowed_from = ALLOWED
    steps = (Step("record_block", record_block), Step("apply_filter", apply_interface))

    @classmethod
    def check_request(cls, principal: Principal, vps: Vps, params: dict[str, Any]) -> None:
        _staff(principal)
        if vps.mail_blocked:
            raise Conflict("outgoing mail is already blocked")


@register
class MailUnblockVps(Operation):
    kind = "mail-unblock"
    allowed_from = ALLOWED
    steps = (Step("record_unblock", record_unblock), Step("apply_filter", apply_interface))

    @classmethod
    def check_request(cls, principal: Principal, vps: Vps, params: dict[str, Any]) -> None:
        _staff(principal)
        if not vps.mail_blocked:
            raise Conflict("outgoing mail is not blocked")
