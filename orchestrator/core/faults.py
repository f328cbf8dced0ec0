"""Fault points: named places in a job's run where a worker can be told to kill itself, so that a
crash test lands exactly where it says instead of where a timer happened to fall.

A point is named ``<job kind>:<when>:<step>``:

- ``before:<step>`` — the step is recorded started and nothing of it is done yet;
- ``after:<step>`` — the step's work is done on the host, and not yet recorded done (the next
  attempt runs it again: every step must bear being run twice);
- ``during:<step>`` — inside a long step, once its copy has begun and before it ends (a backup
  job running in QEMU, a volume half streamed, a migration under way);
- ``before:succeed`` — every step recorded done, the job not yet recorded succeeded;
- ``during:rollback`` — the job failed for good and its rollback has begun.

A worker is told with ``VPSCTL_FAULT_KILL_AT``: points separated by commas, or ``@<file>`` to read
them from that file each time a point is reached (a running worker armed anew, as a drill or a
test moves on from one point to the next).  It dies with SIGKILL
— no ``finally``, no flush, no lease given back — at each point the first time a job reaches it on
its first attempt (the attempt that resumes the job runs through).  ``VPSCTL_FAULT_LOG`` names a
file where each point reached is written (a JSON line, flushed to disk) before the worker acts on
it, so that a test can tell the point was reached and the process died right there.

For the test suite and for rehearsing an incident, never for production: a worker started with a
point to kill itself at says so in its log.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class _Running:
    kind: str
    job_id: str
    attempt: int
    step: str = ""
    reached: set[str] = field(default_factory=set)


_kill_at: frozenset[str] = frozenset()
_kill_file: Path | None = None
_log_path: Path | None = None
_current = threading.local()
_write = threading.Lock()


def configure(kill_at: str, log_path: Path | None) -> None:
    """Arm the points named in ``kill_at`` (comma-separated); record points reached in ``log_path``."""
    global _kill_at, _kill_file, _log_path
    _kill_file = Path(kill_at[1:]) if kill_at.startswith("@") else None
    _kill_at = frozenset() if _kill_file else _points(kill_at)
    _log_path = log_path
    if _kill_at or _kill_file:
        log.warning("fault points armed: this process kills itself at %s (a test setting, never for "
                    "production)", kill_at)


def _points(text: str) -> frozenset[str]:
    return frozenset(p.strip() for p in text.split(",") if p.strip())


def _armed_points() -> frozenset[str]:
    if _kill_file is None:
        return _kill_at
    try:
        return _points(_kill_file.read_text())
    except OSError:
        return frozenset()


def armed() -> bool:
    return bool(_kill_at) or _kill_file is not None or _log_path is not None


@contextmanager
def running(kind: str, job_id: str, attempt: int) -> Iterator[None]:
    """The job this thread runs, for the points reached inside it (``during``)."""
    previous = getattr(_current, "job", None)
    _current.job = _Running(kind, job_id, attempt)
    try:
        yield
    finally:
        _current.job = previous


def point(when: str, step: str) -> None:
    """The thread's job reaches ``<when>:<step>``."""
    job: _Running | None = getattr(_current, "job", None)
    if job is None:
        return
    job.step = step if when in ("before", "during") else job.step
    _reach(job, f"{job.kind}:{when}:{step}")


def during() -> None:
    """Called inside a long step's copy: the thread's job reaches ``during:<its step>``."""
    job: _Running | None = getattr(_current, "job", None)
    if job is None or not job.step:
        return
    _reach(job, f"{job.kind}:during:{job.step}")


def _reach(job: _Running, name: str) -> None:
    if not armed() or name in job.reached:  # a copy's chunks reach ``during`` many times: once counts
        return
    job.reached.add(name)
    kill = job.attempt == 1 and name in _armed_points()
    if _log_path is not None:
        line = json.dumps({"point": name, "job": job.job_id, "attempt": job.attempt, "pid": os.getpid(),
                           "action": "kill" if kill else "pass"})
        with _write, _log_path.open("a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    if kill:
        os.kill(os.getpid(), signal.SIGKILL)
