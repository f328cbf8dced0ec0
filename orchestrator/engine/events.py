"""Lifecycle events of operations, and who listens to them.

An operation never calls the workflows built on it.  The request path and the worker publish what
happens to each job and the contract's workflows (orchestrator/workflows) subscribe:

    requested   the job is being recorded, in the asker's transaction: a listener may refuse it
                (raise: nothing is recorded) — e.g. R6.2-notice refuses an early reinstall
    started     the worker is about to run the job's first step (once per job, again after a
                retry or a deferral as long as no step ran): a listener may refuse it (raise) or
                make it wait (``Deferred``) — e.g. R8.7-default holds an erasure until its date
    succeeded   the last step and the operation's own ``succeed`` ran
    failed      the job failed for good (after its rollback), or was refused when it started

Listeners of ``started``, ``succeeded`` and ``failed`` get the job's ``Context`` and own their
transactions (``ctx.transaction()``); they run again when a worker dies before the job is
recorded finished, so they must be idempotent.  ``kinds`` narrows a listener to some operations;
none means every operation.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from orchestrator.engine.context import Context, Request

if TYPE_CHECKING:
    from orchestrator.core.models import Job


class Phase(enum.StrEnum):
    requested = "requested"
    started = "started"
    succeeded = "succeeded"
    failed = "failed"


@dataclass(frozen=True)
class Requested:
    """A job being recorded: who asked what of which VPS, and the plan ``check`` returned."""

    kind: str
    request: Request
    params: Any  # the operation's Params model
    plan: Any  # its Plan, or None
    job: Job


RequestedListener = Callable[[Requested], None]
RunListener = Callable[[Context], None]
FailedListener = Callable[[Context, Exception], None]
L = TypeVar("L", bound=Callable[..., None])

_listeners: dict[Phase, list[tuple[frozenset[str], Callable[..., None]]]] = {phase: [] for phase in Phase}


def _subscribe(phase: Phase, kinds: tuple[str, ...]) -> Callable[[L], L]:
    def register(fn: L) -> L:
        _listeners[phase].append((frozenset(kinds), fn))
        return fn

    return register


def on_requested(*kinds: str) -> Callable[[RequestedListener], RequestedListener]:
    return _subscribe(Phase.requested, kinds)


def on_started(*kinds: str) -> Callable[[RunListener], RunListener]:
    return _subscribe(Phase.started, kinds)


def on_succeeded(*kinds: str) -> Callable[[RunListener], RunListener]:
    return _subscribe(Phase.succeeded, kinds)


def on_failed(*kinds: str) -> Callable[[FailedListener], FailedListener]:
    return _subscribe(Phase.failed, kinds)


def listeners(phase: Phase, kind: str) -> list[Callable[..., None]]:
    """In the order they subscribed (workflows are imported in a fixed order)."""
    return [fn for kinds, fn in _listeners[phase] if not kinds or kind in kinds]


def requested(event: Requested) -> None:
    for fn in listeners(Phase.requested, event.kind):
        fn(event)


def started(ctx: Context) -> None:
    for fn in listeners(Phase.started, ctx.job.kind):
        fn(ctx)


def succeeded(ctx: Context) -> None:
    for fn in listeners(Phase.succeeded, ctx.job.kind):
        fn(ctx)


def failed(ctx: Context, error: Exception) -> None:
    for fn in listeners(Phase.failed, ctx.job.kind):
        fn(ctx, error)
