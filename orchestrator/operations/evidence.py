"""R6.3-evidence: staff check what a client's VPS serves, to establish evidence of a breach.

A recorded, audited action: the job (who asked, the reason, the URL) is in the VPS's events, and
its result is an ``Evidence`` row with the raw response on disk (orchestrator/evidence.py).  The
page is fetched like any visitor would (R2-no-guest-management: no login).  A VPS that cannot be
reached (cut off under R5.5-cutoff, no address, nothing listening, no answer in time) ends the job
failed with the reason, recorded in the evidence too; it never hangs.
"""

from __future__ import annotations

from typing import Any

from orchestrator import evidence
from orchestrator.auth import Principal
from orchestrator.errors import Forbidden, InvalidRequest, OperationFailed
from orchestrator.models import Vps, VpsStatus
from orchestrator.operations.base import Context, Operation, Step, register


def fetch_content(ctx: Context) -> str:
    done = evidence.for_job(ctx.engine, ctx.job.id)  # a resumed job does not fetch twice
    if done is None:
        vps = ctx.vps()
        port, path = int(ctx.params.get("port", 80)), str(ctx.params.get("path", "/"))
        host_header = ctx.params.get("host_header")
        address = vps.addresses[0] if vps.addresses else ""
        url = evidence.url_of(address or "unknown", port, path)
        if vps.cut_off:
            capture = evidence.Capture(error="the VPS is cut off from the network (R5.5-cutoff): "
                                             "its content cannot be reached")
        elif not address:
            capture = evidence.Capture(error="the VPS has no known address")
        else:
            capture = evidence.fetch(address, port, path, host_header=host_header,
                                     proxy_command=ctx.settings.guest_proxy_command,
                                     timeout=ctx.settings.evidence_timeout_seconds,
                                     max_bytes=ctx.settings.evidence_max_bytes)
        done = evidence.record(ctx.engine, ctx.settings, vps_id=vps.id, job_id=ctx.job.id,
                               requested_by=ctx.job.requested_by, reason=str(ctx.params.get("reason", "")),
                               url=url, host_header=host_header, capture=capture)
    if done.error and done.status_code is None:
        raise OperationFailed(f"evidence {done.id} ({done.url}): {done.error}")
    summary = (f"evidence {done.id}: {done.url} HTTP {done.status_code}, {done.size_bytes} bytes, "
               f"sha256 {done.body_sha256}")
    if done.truncated:
        summary += " (truncated)"
    if done.error:
        summary += f"; {done.error}"
    return summary[:500]


@register
class EvidenceVps(Operation):
    kind = "evidence"
    # Cut off: accepted, and the job fails saying why (the content cannot be reached).
    allowed_from = frozenset({VpsStatus.running, VpsStatus.cut_off})
    steps = (Step("fetch_content", fetch_content),)

    @classmethod
    def check_request(cls, principal: Principal, vps: Vps, params: dict[str, Any]) -> None:
        if not principal.is_staff:
            raise Forbidden("only staff check the content a VPS serves (R6.3-evidence)")
        if not str(params.get("reason", "")).strip():
            raise InvalidRequest("a reason is required (R6.3-evidence: a recorded, audited action)")
