"""R6.3-evidence: staff check what a client's VPS serves, to establish evidence of a breach.

A recorded, audited action: the job (who asked, the reason, the URL) is in the VPS's events, and
its result is an ``Evidence`` row with the raw response on disk (``record`` below).  The
page is fetched like any visitor would (R2-no-guest-management: no login).  A VPS that cannot be
reached (cut off under R5.5-cutoff, no address, nothing listening, no answer in time) ends the job
failed with the reason, recorded in the evidence too; it never hangs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, StringConstraints
from sqlalchemy.engine import Engine
from sqlmodel import select

from orchestrator.adapters import web
from orchestrator.core.clock import utcnow
from orchestrator.core.db import session_scope
from orchestrator.core.errors import OperationFailed
from orchestrator.core.files import open_private, private_dir
from orchestrator.core.models import Evidence, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.engine.context import Context
from orchestrator.engine.operation import Audience, Operation, Params, Step, register


class EvidenceBody(Params):
    reason: Annotated[str, StringConstraints(
        strip_whitespace=True, min_length=1, max_length=2000, pattern=r"\S")] = Field(
        description="Why the content is checked (the suspected breach); recorded with the evidence")
    port: int = Field(default=80, ge=1, le=65535)
    path: Annotated[str, StringConstraints(pattern=web.PATH_PATTERN, max_length=2000)] = Field(
        default="/", description="Absolute path and query, printable ASCII without spaces")
    host_header: Annotated[str, StringConstraints(pattern=web.HOST_PATTERN, max_length=255)] | None = Field(
        default=None, description="Host header to send (a name-based virtual host); default: the address")


def fetch_content(ctx: Context) -> str:
    done = for_job(ctx.engine, ctx.job.id)  # a resumed job does not fetch twice
    if done is None:
        vps, args = ctx.vps(), ctx.args(EvidenceBody)
        address = vps.addresses[0] if vps.addresses else ""
        url = web.url_of(address or "unknown", args.port, args.path)
        if vps.cut_off:
            capture = web.Capture(error="the VPS is cut off from the network (R5.5-cutoff): "
                                        "its content cannot be reached")
        elif not address:
            capture = web.Capture(error="the VPS has no known address")
        else:
            capture = web.fetch(address, args.port, args.path, host_header=args.host_header,
                                proxy_command=ctx.guest_proxy_command,
                                timeout=ctx.settings.contract.evidence_timeout_seconds,
                                max_bytes=ctx.settings.contract.evidence_max_bytes)
        done = record(ctx.engine, ctx.settings, vps_id=vps.id, job_id=ctx.job.id,
                      requested_by=ctx.job.requested_by, reason=args.reason,
                      url=url, host_header=args.host_header, capture=capture)
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
class EvidenceVps(Operation[EvidenceBody]):
    """R6.3-evidence (staff): fetch `http://<the VPS's first address>:<port><path>` like a visitor
    (one GET, redirects recorded not followed, bounded in time and size) and keep the response as
    evidence.  The job's result names the evidence; a VPS that cannot be reached (e.g. cut off)
    ends the job failed with the reason."""

    kind = "evidence"
    route = "/evidence"
    details_for_staff = True  # the client sees that a check ran, not what it found
    params = EvidenceBody
    audience = Audience.staff
    rule = "R6.3-evidence"
    # Cut off: accepted, and the job fails saying why (the content cannot be reached).
    allowed_from = frozenset({VpsStatus.running, VpsStatus.cut_off})
    steps = (Step("fetch_content", fetch_content),)


def evidence_dir(settings: Settings) -> Path:
    return settings.state_dir / "evidence"


def raw_path(settings: Settings, job_id: str) -> Path:
    return evidence_dir(settings) / f"{job_id}.http"


def for_job(engine: Engine, job_id: str) -> Evidence | None:
    with session_scope(engine) as session:
        row = session.exec(select(Evidence).where(Evidence.job_id == job_id)).first()
        if row is not None:
            session.expunge(row)
        return row


def record(engine: Engine, settings: Settings, *, vps_id: str, job_id: str, requested_by: str, reason: str,
           url: str, host_header: str | None, capture: web.Capture) -> Evidence:
    """The raw file (0600, in a 0700 directory: it may hold a client's data) and its row."""
    private_dir(evidence_dir(settings))
    with open_private(raw_path(settings, job_id)) as out:
        out.write(capture.raw)
    row = Evidence(vps_id=vps_id, job_id=job_id, requested_by=requested_by[:100], reason=reason[:2000],
                   url=url[:2100], host_header=host_header, fetched_at=utcnow(), status_code=capture.status_code,
                   headers=capture.headers, body_sha256=capture.sha256, size_bytes=len(capture.body),
                   truncated=capture.truncated, error=capture.error[:2000] if capture.error else None)
    with session_scope(engine) as session:
        session.add(row)
        session.flush()
        session.expunge(row)
    return row
