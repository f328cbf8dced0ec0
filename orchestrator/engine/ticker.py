"""Periodic duties of a worker process: the billing run, the reconciler, traffic counters.
Each run is recorded (orchestrator/engine/status.py: counted, with its facts, for GET /metrics).

Deadlines are not here: a deadline is a job with ``scheduled_at`` (orchestrator/jobs), durable and
claimed like any job.  These tasks look at the world and record what they find (or enqueue jobs);
each must be safe to run in several worker processes at once and to run again after a crash
(unique keys, conditional updates), because every worker process runs them.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from orchestrator.compute.hosts import Drivers
from orchestrator.core.clock import utcnow
from orchestrator.core.settings import Settings
from orchestrator.engine import status

log = logging.getLogger(__name__)

# Who ran a duty, in its record (orchestrator/engine/status.py).
PROCESS = f"{socket.gethostname()}:{os.getpid()}"

TaskFn = Callable[[Engine, Settings, Drivers], object]


@dataclass(frozen=True)
class Task:
    name: str
    run: TaskFn
    interval: Callable[[Settings], float]  # seconds between runs, from the settings; <= 0 disables


TASKS: list[Task] = []


def periodic(name: str, interval: Callable[[Settings], float]) -> Callable[[TaskFn], TaskFn]:
    """Register a task run every ``interval(settings)`` seconds by every worker process."""

    def register(fn: TaskFn) -> TaskFn:
        TASKS.append(Task(name, fn, interval))
        return fn

    return register


def run_due(engine: Engine, settings: Settings, drivers: Drivers, last: dict[str, float]) -> None:
    """Run each task whose interval has elapsed since its last run (in ``last``, monotonic)."""
    now = time.monotonic()
    for task in TASKS:
        every = task.interval(settings)
        if every <= 0 or now - last.get(task.name, -1e18) < every:
            continue
        last[task.name] = now
        started, result, error = utcnow(), None, None
        try:
            result = task.run(engine, settings, drivers)
        except Exception as exc:
            log.exception("periodic task %s failed", task.name)
            error = exc
        try:  # counted, with what it found (status.facts_of): GET /metrics
            status.record_run(engine, task.name, PROCESS, started, result, error)
        except Exception:
            log.exception("periodic task %s: its run was not recorded", task.name)


def run_forever(engine: Engine, settings: Settings, stop: threading.Event, drivers: Drivers | None = None) -> None:
    own = drivers is None
    drivers = drivers or Drivers()
    last: dict[str, float] = {}
    try:
        while not stop.is_set():
            run_due(engine, settings, drivers, last)
            stop.wait(settings.periodic.ticker_seconds)
    finally:
        if own:
            drivers.close()


def start_thread(engine: Engine, settings: Settings, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=run_forever, args=(engine, settings, stop), name="vpsctl-ticker", daemon=True)
    thread.start()
    return thread
