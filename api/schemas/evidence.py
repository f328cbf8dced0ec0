"""Bodies of /v1 requests and answers: evidence of what a VPS served (R6.3-evidence)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class EvidenceOut(BaseModel):
    id: str
    vps_id: str
    job_id: str
    requested_by: str
    reason: str
    url: str
    host_header: str | None
    fetched_at: datetime | None
    status_code: int | None
    headers: list[list[str]]
    body_sha256: str | None
    size_bytes: int
    truncated: bool
    error: str | None
    download: str
