"""What every operation is made of.

An operation is data (a Job row of its ``kind``) mapped by name to one class here, with a fixed
life: ``request`` checks the arguments and the VPS's status and records the job (API side);
``steps`` are executed by a worker in order, each one idempotent: it looks at the actual state
(is the volume there? the domain defined? running?) before acting, so a job resumed after a crash
just runs its first unfinished step again.  ``rollback`` undoes a job that failed for good.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from orchestrator import jobs
from orchestrator.auth import Principal
from orchestrator.clock import utcnow
from orchestrator.db import session_scope
from orchestrator.designer import domain_config
from orchestrator.errors import InvalidState, OperationFailed
from orchestrator.hypervisor import HypervisorDriver
from orchestrator.models import Customer, Host, Job, Vps, VpsStatus
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from orchestrator.hosts import Drivers


class LeaseLost(Exception):
    """Another worker took the job over; this one must stop touching it."""


class Deferred(Exception):
    """Raised by a deadline job's ``begin`` when its time has not come (the deadline was recomputed,
    e.g. from the actual sending time of a notice): the job waits until ``until``."""

    def __init__(self, until: datetime, reason: str) -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason


@dataclass
class Context:
    """What a step may use: the job, its VPS, the VPS's host and driver, settings."""

    engine: Engine
    settings: Settings
    drivers: Drivers
    job: Job
    worker_id: str
    check_lease: Callable[[], None]
    _host: Host | None = None

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    def vps(self) -> Vps:
        with session_scope(self.engine) as session:
            vps = session.get(Vps, self.job.vps_id)
            if vps is None:
                raise OperationFailed(f"VPS {self.job.vps_id} is not recorded")
            session.expunge(vps)
            return vps

    def host(self) -> Host:
        # A VPS does not change host during a job: read it once.
        if self._host is None:
            vps = self.vps()
            with session_scope(self.engine) as session:
                host = session.get(Host, vps.host_id)
                if host is None:
                    raise OperationFailed(f"VPS {vps.id} has no host")
                session.expunge(host)
                self._host = host
        return self._host

    @property
    def driver(self) -> HypervisorDriver:
        return self.drivers.for_uri(self.host().uri)

    def update_vps(self, **changes: Any) -> Vps:
        with session_scope(self.engine) as session:
            vps = session.get(Vps, self.job.vps_id)
            if vps is None:
                raise OperationFailed(f"VPS {self.job.vps_id} is not recorded")
            for key, value in changes.items():
                setattr(vps, key, value)
            vps.updated_at = utcnow()
            session.add(vps)
            session.flush()
            session.expunge(vps)
            return vps


    def update_params(self, **changes: Any) -> None:
        """Remember something in the job itself (it survives a crash; the next attempt reads it)."""
        with session_scope(self.engine) as session:
            job = session.get(Job, self.job.id)
            if job is None:
                raise OperationFailed(f"job {self.job.id} is not recorded")
            job.params = {**job.params, **changes}
            session.add(job)
            self.job.params = dict(job.params)

    def define(self) -> str:
        """(Re)define the domain from the VPS record: the persistent definition always follows
        the record (sizes, link state), whatever happened to it on the host."""
        vps, host = self.vps(), self.host()
        with session_scope(self.engine) as session:
            customer = session.get(Customer, vps.customer_id)
            customer_name = customer.name if customer else ""
        self.driver.define_domain(domain_config(vps, host, customer_name, self.settings))
        return f"defined {vps.domain_name} ({host.domain_type}, {vps.vcpus} vCPU, {vps.memory_mib} MiB)"


StepFn = Callable[[Context], str | None]


@dataclass(frozen=True)
class Step:
    name: str
    run: StepFn


class Operation:
    kind: ClassVar[str]
    # Statuses the VPS may be in when the job starts (checked at request and again at start).
    allowed_from: ClassVar[frozenset[VpsStatus]]
    steps: ClassVar[tuple[Step, ...]]

    @classmethod
    def check_request(cls, principal: Principal, vps: Vps, params: dict[str, Any]) -> None:
        """API-side checks beyond the status (roles, arguments); raise to refuse."""

    @classmethod
    def check_status(cls, vps: Vps) -> None:
        if vps.status not in cls.allowed_from:
            raise InvalidState(cls.kind, vps.status.value, {s.value for s in cls.allowed_from})

    @classmethod
    def begin(cls, ctx: Context) -> None:
        """Runs before the first step of every attempt (re-checks the status)."""

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        """Runs after the last step."""

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        """Undo what the steps did, after a failure for good.  Must itself be idempotent."""


def request(
    session: Session, settings: Settings, principal: Principal, vps: Vps, operation: type[Operation],
    params: dict[str, Any] | None = None, *, scheduled_at: datetime | None = None, commit: bool = True,
) -> Job:
    """Check an operation on a VPS and record its job (the API side of every operation).
    ``scheduled_at`` makes it a deadline job; its status is checked again when it starts.
    ``commit=False`` leaves the job in the caller's transaction (recorded with what asked for it)."""
    params = dict(params or {})
    if scheduled_at is None:
        operation.check_status(vps)
    operation.check_request(principal, vps, params)
    params.setdefault("requested_role", principal.role.value)
    job = jobs.enqueue(session, operation.kind, vps, params, str(principal), len(operation.steps),
                       settings.job_max_attempts, scheduled_at=scheduled_at)
    if commit:
        session.commit()
        jobs.notify()
    return job


def wait_until(ctx: Context, timeout: float, what: str, probe: Callable[[], str | None]) -> str:
    """Poll ``probe`` until it returns a message; OperationFailed after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        ctx.check_lease()
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise OperationFailed(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.25)


OPERATIONS: dict[str, type[Operation]] = {}


def register(cls: type[Operation]) -> type[Operation]:
    OPERATIONS[cls.kind] = cls
    return cls
