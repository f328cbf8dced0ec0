"""Reboot a VPS: soft (ACPI, the guest restarts itself) or hard (reset, like the reset button).
A cut-off VPS stays cut off (R5.5-cutoff): the live link state survives a reset, and the
definition keeps the link down for a fresh start."""

from __future__ import annotations

from orchestrator.models import VpsStatus
from orchestrator.operations.base import Context, Operation, Step, register


def reboot(ctx: Context) -> str:
    hard = bool(ctx.params.get("hard"))
    ctx.define()
    ctx.driver.reboot_domain(ctx.vps().id, hard=hard)
    return "reset" if hard else "reboot requested from the guest (ACPI)"


@register
class RebootVps(Operation):
    kind = "reboot"
    allowed_from = frozenset({VpsStatus.running, VpsStatus.cut_off})
    steps = (Step("reboot", reboot),)
