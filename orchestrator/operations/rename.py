"""Rename a VPS: the name the client sees everywhere (API, notices, hooks' facts) and the title of
its domain on the host.  The guest's own hostname is the client's business (R2-no-guest-management:
the orchestrator never logs in); it was set from the name at the first boot only.

The persistent definition carries the new title at once (the record is its source); a running
domain shows it from its next start.  A rename that fails goes back to the old name in both.
"""

from __future__ import annotations

from pydantic import Field

from orchestrator.core.errors import InvalidRequest
from orchestrator.core.models import VpsStatus
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Operation, Params, Plan, Step, register
from orchestrator.operations.create import VpsName


class RenameBody(Params):
    name: VpsName = Field(description="The new name: lowercase letters, digits and '-', 1-63 characters")


class RenamePlan(Plan):
    old: str
    new: str


def record_name(ctx: Context) -> str:
    plan = ctx.plan(RenamePlan)
    ctx.update_vps(name=plan.new)
    return f"{plan.old} -> {plan.new}"


def redefine(ctx: Context) -> str:
    return ctx.define()


@register
class RenameVps(Operation[RenameBody]):
    """Give the VPS another name (the guest's hostname stays what its system says)."""

    kind = "rename"
    route = "/rename"
    params = RenameBody
    allowed_from = frozenset({VpsStatus.running, VpsStatus.stopped, VpsStatus.suspended, VpsStatus.cut_off})
    steps = (Step("record_name", record_name), Step("redefine", redefine))

    @classmethod
    def check(cls, req: Request, params: RenameBody) -> RenamePlan:
        assert req.vps is not None
        if params.name == req.vps.name:
            raise InvalidRequest(f"the VPS is already called {params.name}")
        return RenamePlan(old=req.vps.name, new=params.name)

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        """Back to the old name, in the record and the definition."""
        if ctx.vps().name != ctx.plan(RenamePlan).old:
            ctx.update_vps(name=ctx.plan(RenamePlan).old)
            ctx.define()
