"""What every operation is made of, and the one way to ask for one.

An operation is data (a Job row of its ``kind``, with its parameters) mapped by name to one class,
with a fixed life (after Ganeti's logical units):

    request   ``request(req, Operation, params)``: who may ask (``audience``), the VPS's status
              (``allowed_from``), then the operation's ``check`` — which may read anything through
              the ``Request`` and returns the plan — then the job is recorded and the workflows
              hear it ``requested`` (they may still refuse).  The caller owns the transaction;
              committing it wakes the worker.
    start     the worker checks the same again with the VPS as it is now (the plan may change:
              a resize asked live of a VPS stopped meanwhile runs cold), then ``started`` (the
              workflows' gates) and ``begin``
    steps     run in order, each idempotent: it looks at the actual state (is the volume there?
              the domain defined? running?) before acting, so a job resumed after a crash runs
              its first unfinished step again
    end       ``succeed`` then ``succeeded``; or ``rollback`` (undo, idempotent) then ``failed``

``params`` is a pydantic model: the body of the operation's HTTP request and the job's parameters.
Workflows may give more than a client can (``job_params``, a wider model).  A ``route`` exposes
the operation at ``POST /v1/vps/{id}<route>`` (api/routers/operations.py).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from orchestrator.core.auth import Principal
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import Conflict, Forbidden, InvalidState, OperationFailed
from orchestrator.core.models import Host, Job, Role, Vps, VpsStatus
from orchestrator.engine import events, jobs, measures
from orchestrator.engine.context import PLAN, REQUESTED_ROLE, Context, Request


class LeaseLost(Exception):
    """Another worker took the job over; this one must stop touching it."""


class Deferred(Exception):
    """Raised when a job's time has not come (by a deadline job's gate, e.g. a deadline recomputed
    from the actual sending time of a notice): the job waits until ``until``, not counted as an
    attempt."""

    def __init__(self, until: datetime, reason: str) -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason


class Waiting(Exception):
    """Raised by ``wait_until`` when a step has polled its guest for a while in vain: the worker
    gives the slot back and queues the job again at the same step, to look again from ``until``
    (not counted as an attempt; the wait's deadline is kept in the job)."""

    def __init__(self, what: str, until: datetime) -> None:
        super().__init__(f"waiting for {what}")
        self.what = what
        self.until = until


class Audience(enum.StrEnum):
    """Who may ask for an operation."""

    owner = "owner"  # the VPS's customer, or staff
    staff = "staff"  # support and automation only
    system = "system"  # the orchestrator's own workflows and duties; never exposed to clients


class Params(BaseModel):
    """Base of every operation's parameters."""

    model_config = ConfigDict(extra="forbid")


class NoParams(Params):
    """An operation that takes no parameters."""


class Plan(BaseModel):
    """Base of what an operation's check decides (kept in the job, read by its steps)."""

    model_config = ConfigDict(frozen=True)


StepFn = Callable[[Context], str | None]


@dataclass(frozen=True)
class Step:
    """One step of an operation.  ``skip``, when given, says before the step runs why it has
    nothing to do this time (or None: it runs); it must read only what the steps before it leave
    as it is (the plan, the job's parameters), since it may be asked again after a crash.  A
    skipped step is recorded done ("skipped: ...") in the transaction that starts the next step
    that runs: no transaction, no kill point of its own."""

    name: str
    run: StepFn
    skip: Callable[[Context], str | None] | None = None


P = TypeVar("P", bound=Params)


class Operation(Generic[P]):
    kind: ClassVar[str]
    params: ClassVar[type[Params]] = NoParams
    job_params: ClassVar[type[Params] | None] = None
    audience: ClassVar[Audience] = Audience.owner
    rule: ClassVar[str] = ""  # the contract rule the operation carries out, named in its refusals
    # Statuses the VPS may be in (checked at request and again when the job starts).
    allowed_from: ClassVar[frozenset[VpsStatus]]
    steps: ClassVar[tuple[Step, ...]]
    route: ClassVar[str | None] = None
    # True: the VPS's client sees that such a job ran, not what it says (staff's own work: evidence, hooks)
    details_for_staff: ClassVar[bool] = False
    # False: asked also while the VPS's host does not answer (evacuate); otherwise a person's
    # request is refused then (the VPS's state is unknown), a workflow's goes through
    needs_host_up: ClassVar[bool] = True
    summary: ClassVar[str] = ""  # one line for the API's documentation (default: the docstring's first)

    # --- asking -----------------------------------------------------------------------------
    @classmethod
    def authorize(cls, req: Request) -> None:
        """Who may ask; raises Forbidden.  Visibility (another customer's VPS is a 404) is
        settled before: by the API's lookup, or by the workflow that asks.  A system operation is
        asked by a workflow for one of its records (``req.cause``: a client's non-renewal ends
        the service), or by staff.  A client's request is also held by the measures standing on
        the VPS (orchestrator/engine/measures.py)."""
        allowed = {Audience.owner: True, Audience.staff: req.principal.is_staff,
                   Audience.system: req.principal.is_staff or req.cause is not None}[cls.audience]
        if not allowed:
            raise Forbidden(f"only staff ask for {cls.kind}" + (f" ({cls.rule})" if cls.rule else ""))
        if req.vps is not None and cls.audience is not Audience.system:
            measures.check(req.session, req.principal, req.vps, cls.kind)

    @classmethod
    def pending(cls, req: Request) -> Job | None:
        """A job of this operation already asked and not finished that answers this request too
        (``delete``: asking twice is asking once); None by default."""
        return None

    @classmethod
    def check_status(cls, vps: Vps) -> None:
        if vps.status not in cls.allowed_from:
            raise InvalidState(cls.kind, vps.status.value, {s.value for s in cls.allowed_from})

    @classmethod
    def check_host(cls, req: Request) -> None:
        """A person's request for a VPS whose host does not answer is refused: what the VPS is
        doing is unknown until the host answers or the VPS is evacuated (R5.2-keep-running)."""
        if not cls.needs_host_up or req.cause is not None or req.vps is None or req.vps.host_id is None:
            return
        host = req.session.get(Host, req.vps.host_id)
        if host is not None and host.state == "unreachable":
            raise Conflict(f"the VPS's host does not answer: its state is unknown until the host is back or the "
                           f"VPS is rebuilt on another host (R5.2-keep-running); {cls.kind} is not possible now")

    @classmethod
    def check(cls, req: Request, params: P) -> Plan | None:
        """Everything else that must hold (arguments against the records, capacity, ...); returns
        the plan.  Run when the job is asked and again when it starts; raise to refuse."""
        return None

    @classmethod
    def prepare(cls, req: Request, params: P, plan: Plan | None) -> Vps | None:
        """The VPS the job is about, once checked (``create`` records it here)."""
        return req.vps

    @classmethod
    def read_params(cls, raw: dict[str, Any]) -> P:
        model = cls.job_params or cls.params
        return model.model_validate({k: v for k, v in raw.items() if k in model.model_fields})  # type: ignore[return-value]

    # --- running ----------------------------------------------------------------------------
    @classmethod
    def begin(cls, ctx: Context) -> None:
        """Runs before the first unfinished step of every attempt."""

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        """Runs after the last step."""

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        """Undo what the steps did, after a failure for good.  Must itself be idempotent."""


OPERATIONS: dict[str, type[Operation[Any]]] = {}
OperationT = TypeVar("OperationT", bound=type[Operation[Any]])


def register(cls: OperationT) -> OperationT:
    if cls.kind in OPERATIONS and OPERATIONS[cls.kind] is not cls:
        raise ValueError(f"two operations are called {cls.kind!r}")
    OPERATIONS[cls.kind] = cls
    return cls


def request(req: Request, operation: type[Operation[P]], params: P, *, scheduled_at: datetime | None = None,
            idempotency_key: str | None = None) -> Job:
    """Check an operation and record its job, in the caller's transaction (see the module's
    docstring).  ``scheduled_at`` makes it a deadline job: its status is checked when it starts.
    Asked again with the same ``idempotency_key``, it answers the job it recorded the first time."""
    if idempotency_key:
        earlier = jobs.find_idempotent(req.session, str(req.principal), idempotency_key)
        if earlier is not None:
            return earlier
    operation.authorize(req)
    same = operation.pending(req)
    if same is not None:
        return same
    if req.vps is not None and scheduled_at is None:
        operation.check_status(req.vps)
        operation.check_host(req)
    plan = operation.check(req, params)
    vps = operation.prepare(req, params, plan)
    values = params.model_dump(mode="json")
    values[REQUESTED_ROLE] = req.principal.role.value
    if plan is not None:
        values[PLAN] = plan.model_dump(mode="json")
    job = jobs.enqueue(req.session, operation.kind, vps, values, str(req.principal), len(operation.steps),
                       req.settings.jobs.max_attempts, idempotency_key=idempotency_key, scheduled_at=scheduled_at,
                       cause=req.cause)
    events.requested(events.Requested(operation.kind, req, params, plan, job))
    return job


def requester(job: Job, vps: Vps | None) -> Principal:
    """Who asked for ``job``, as the worker re-checks it: their role, and for a customer the
    VPS's owner (a customer only ever asks about their own VPS)."""
    role = Role(job.params.get(REQUESTED_ROLE) or Role.automation.value)
    label = job.requested_by.split(":", 1)[-1]
    customer_id = vps.customer_id if role is Role.customer and vps is not None else None
    return Principal(role=role, customer_id=customer_id, label=label)


def wait_until(ctx: Context, timeout: float, what: str, probe: Callable[[], str | None]) -> str:
    """Poll ``probe`` until it returns a message; OperationFailed ``timeout`` seconds after the
    wait began.  After ``wait_hold_seconds`` in vain it raises ``Waiting``: the worker slot goes
    to another job and this step runs again later, under the same deadline (kept in the job, per
    step and attempt: a retried or crashed-and-resumed attempt waits afresh)."""
    step = ctx.job.step or what
    deadline = ctx.wait_deadline(step, timeout)
    hold = time.monotonic() + ctx.settings.jobs.wait_hold_seconds
    while True:
        ctx.check_lease()
        found = probe()
        if found:
            ctx.end_wait(step)
            return found
        now = utcnow()
        if now > deadline:
            ctx.end_wait(step)
            raise OperationFailed(f"{what} did not happen within {timeout:.0f} s")
        if time.monotonic() >= hold:
            raise Waiting(what, min(deadline, now + timedelta(seconds=ctx.settings.jobs.wait_poll_seconds)))
        time.sleep(0.25)
