"""Reboot a VPS: soft (ACPI, the guest restarts itself) or hard (reset, like the reset button).
A cut-off VPS stays cut off (R5.5-cutoff): the live link state survives a reset, and the
definition keeps the link down for a fresh start."""

from __future__ import annotations

from pydantic import Field

from orchestrator.core.models import VpsStatus
from orchestrator.engine.context import Context
from orchestrator.engine.operation import Operation, Params, Step, register


class RebootBody(Params):
    hard: bool = Field(default=False, description="Reset instead of asking the guest to reboot")


def reboot(ctx: Context) -> str:
    hard = ctx.args(RebootBody).hard
    ctx.define()
    ctx.driver.reboot_domain(ctx.vps().id, hard=hard)
    return "reset" if hard else "reboot requested from the guest (ACPI)"


@register
class RebootVps(Operation[RebootBody]):
    """Soft (ACPI) or hard (reset) reboot."""

    kind = "reboot"
    route = "/reboot"
    params = RebootBody
    allowed_from = frozenset({VpsStatus.running, VpsStatus.cut_off})
    steps = (Step("reboot", reboot),)
