"""Bring a VPS's interface to what its record says (the filter: clean-traffic, the mail block,
the address the guest may use; and the link), in its definition and in the running domain.

Asked by the reconciler (orchestrator/workflows/reconciler.py), never by a client, when a running
domain's interface filter is not the one the record gives: a domain defined before every
interface went through clean-traffic, or one changed on the host by hand.  Asking while one is
queued answers the queued one."""

from __future__ import annotations

from orchestrator.core.models import Job, VpsStatus
from orchestrator.engine import jobs
from orchestrator.engine.context import Request
from orchestrator.engine.operation import Audience, NoParams, Operation, Step, register
from orchestrator.operations.steps.network import apply_interface


@register
class SyncNetworkVps(Operation[NoParams]):
    kind = "network-sync"
    audience = Audience.system
    allowed_from = frozenset({VpsStatus.running, VpsStatus.cut_off, VpsStatus.stopped, VpsStatus.suspended})
    steps = (Step("apply_filter", apply_interface),)

    @classmethod
    def pending(cls, req: Request) -> Job | None:
        return next(iter(jobs.pending(req.session, req.vps.id, {cls.kind})), None) if req.vps else None
