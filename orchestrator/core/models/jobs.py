"""Durable jobs (orchestrator/engine) and the events that tell what they did; the answers given
to requests repeated with an ``Idempotency-Key``."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from orchestrator.core.models.types import json_field, new_id, time_field


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"  # a scheduled job called off before it ran (e.g. a payment arrived)


class Job(SQLModel, table=True):
    # ix_job_ready: the claim reads only ready jobs (status, not_before <= now), never the deadline
    # jobs waiting for a later instant (bench/queue_bench.py).
    # list pages (api/pages.py, migration 0017): the sort key after what the list is narrowed to
    __table_args__ = (UniqueConstraint("requested_by", "idempotency_key"),
                      Index("ix_job_ready", "status", "not_before"),
                      Index("ix_job_newest", "created_at", "id"),
                      Index("ix_job_vps_newest", "vps_id", "created_at", "id"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    vps_id: str | None = Field(default=None, foreign_key="vps.id", index=True)
    kind: str = Field(max_length=32)
    params: dict[str, Any] = json_field(dict)
    status: JobStatus = Field(default=JobStatus.queued, index=True)
    step: str | None = Field(default=None, max_length=64)
    steps_done: list[str] = json_field(list)
    steps_total: int = 0
    attempts: int = 0
    max_attempts: int = 3
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = time_field()
    error: str | None = Field(default=None, max_length=4000)
    # The failure as a client may read it: a refusal's own words, or a plain "did not complete"
    # (the error itself may name hosts, paths, workers: staff read it in ``error``).
    public_error: str | None = Field(default=None, max_length=2000)
    requested_by: str = Field(default="", max_length=100)
    idempotency_key: str | None = Field(default=None, max_length=200)
    # The workflow record the job was asked for ("compromise:<id>", "payment_default:<id>",
    # "change_order:<id>", "incident:<id>", ...), None when someone asked directly: the
    # workflow finds its jobs by it; operations never read it.
    cause: str | None = Field(default=None, index=True, max_length=80)
    created_at: datetime | None = time_field(now=True, index=True)
    not_before: datetime | None = time_field(now=True)  # may run from then: asked, retried later, or scheduled
    # A deadline job (reinstall after notice, erasure, end of term): it waits for this instant
    # without holding up the VPS's other jobs, then runs in its turn.
    scheduled_at: datetime | None = time_field(index=True)
    started_at: datetime | None = time_field()
    finished_at: datetime | None = time_field()


class JobEvent(SQLModel, table=True):
    # list pages (api/pages.py, migration 0017): the sort key after what the list is narrowed to
    __table_args__ = (Index("ix_jobevent_vps_newest", "vps_id", "at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", index=True, max_length=36)
    vps_id: str | None = Field(default=None, index=True, max_length=36)
    at: datetime | None = time_field(now=True)
    step: str = Field(max_length=64)
    status: str = Field(max_length=16)  # started | done | skipped | failed | info | retry
    message: str = Field(default="", max_length=2000)
    actor: str = Field(default="", max_length=100)


class IdempotentRequest(SQLModel, table=True):
    """A request made with an ``Idempotency-Key`` and the answer it got (api/guard.py): the same
    key again from the same account gets the same answer; with another request, a refusal.
    ``status`` is None while the first request is being answered."""

    __table_args__ = (UniqueConstraint("account", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=80)  # Principal.account
    key: str = Field(max_length=200)
    request_hash: str = Field(max_length=64)  # sha256 of the method, path, query and body
    status: int | None = None
    content_type: str = Field(default="", max_length=100)
    body: str = ""
    created_at: datetime | None = time_field(now=True)
    answered_at: datetime | None = time_field()


class WorkerStatus(SQLModel, table=True):
    """What a worker process last saw of the queue (orchestrator/engine/status.py): when, by its
    clock, it last looked and found no job ready, and which job it then waited for.  Written at
    most once per heartbeat while idle; ``GET /metrics`` shows it (a worker that stopped looking
    shows an old ``idle_at``)."""

    worker: str = Field(primary_key=True, max_length=100)  # Worker.worker_id
    started_at: datetime | None = time_field(now=True)
    looks: int = 0  # claims tried since the start
    claimed: int = 0  # jobs those claims gave
    idle_at: datetime | None = time_field()  # the last look that found no job ready, by the worker's clock
    next_due_at: datetime | None = time_field()  # then: the earliest instant a queued job may run
    next_due_job_id: str | None = Field(default=None, max_length=36)
    stopped_at: datetime | None = time_field()


class PeriodicRun(SQLModel, table=True):
    """Each periodic duty (orchestrator/engine/ticker.py: the reconciler, the billing run, ...),
    whichever worker process ran it: how many runs ended, how many failed, the last one's times,
    process and facts (what it looked at and decided, as counts: ``{"vps": 3, "drifts": 0}``)."""

    task: str = Field(primary_key=True, max_length=32)
    runs: int = 0
    failures: int = 0
    last_started_at: datetime | None = time_field()
    last_finished_at: datetime | None = time_field()
    last_worker: str = Field(default="", max_length=100)
    last_facts: dict[str, int] = json_field(dict)  # of the last run that ended well
    last_error: str | None = Field(default=None, max_length=2000)  # of the last run, None when it ended well
