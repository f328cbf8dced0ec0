"""Stop a VPS: ACPI power button and a wait (``VPSCTL_STOP_TIMEOUT_SECONDS``), then forced off;
``{"force": true}`` skips the wait."""

from __future__ import annotations

from typing import Any

from orchestrator.auth import Principal
from orchestrator.errors import InvalidRequest
from orchestrator.models import Vps, VpsStatus
from orchestrator.operations.base import Context, Operation, Step, register
from orchestrator.operations.power import power_off


def shut_down(ctx: Context) -> str:
    return power_off(ctx, force=bool(ctx.params.get("force")))


@register
class StopVps(Operation):
    kind = "stop"
    allowed_from = frozenset({VpsStatus.running, VpsStatus.cut_off, VpsStatus.suspended})
    steps = (Step("power_off", shut_down),)

    @classmethod
    def check_request(cls, principal: Principal, vps: Vps, params: dict[str, Any]) -> None:
        if not isinstance(params.get("force", False), bool):
            raise InvalidRequest("force must be true or false")

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=VpsStatus.stopped, suspend_reason=None, suspended_by=None)
