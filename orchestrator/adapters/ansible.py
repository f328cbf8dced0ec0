"""ansible-runner, the seam through which hooks run their playbooks (orchestrator/workflows/hooks)
and hosts are prepared (``run_playbook``, orchestrator/compute/preparation.py).

R2-no-guest-management: a playbook runs on the control plane only (inventory
``localhost ansible_connection=local``) and never logs into a client's VPS; the orchestrator's
own ``VPSCTL_*`` environment is blanked in its environment.

The runner is injected: ``run_hook`` calls the module's current ``Runner`` (ansible-runner by
default); ``use_runner`` swaps it, e.g. in a test that must not depend on Ansible.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from orchestrator.core.files import private_dir
from orchestrator.core.settings import Settings

INVENTORY = "localhost ansible_connection=local"  # R2-no-guest-management: the control plane only
OUTPUT_TAIL_CHARS = 1500  # fits in a job event's message with the line that introduces it


@dataclass(frozen=True)
class HookResult:
    """How a playbook run ended: ansible-runner's status (``successful``, ``failed``,
    ``timeout``, ``canceled``), the return code, and the last part of its output."""

    status: str
    rc: int
    output_tail: str

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0


class Runner(Protocol):
    def __call__(self, playbook: Path, extravars: dict[str, Any], *, work_dir: Path,
                 timeout: float) -> HookResult: ...


def _tail(text: str, limit: int = OUTPUT_TAIL_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _ansible_playbook_path() -> str:
    """PATH for ansible-playbook: the process's own, then the system's (a worker started from the
    virtualenv, or by a service manager with a bare PATH, still finds /usr/bin/ansible-playbook)."""
    parts = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    for extra in ("/usr/local/bin", "/usr/bin", "/bin"):
        if extra not in parts:
            parts.append(extra)
    return os.pathsep.join(parts)


def ansible_available() -> bool:
    return shutil.which("ansible-playbook", path=_ansible_playbook_path()) is not None


@dataclass(frozen=True)
class PlaybookResult(HookResult):
    """A playbook run with its recap: tasks changed and failed over every host."""

    changed: int = 0
    failed: int = 0


def run_playbook(playbook: Path, inventory: str, extravars: dict[str, Any], *, work_dir: Path, timeout: float,
                 envvars: dict[str, str] | None = None) -> PlaybookResult:
    """Run ``playbook`` against ``inventory`` (an INI text) with ansible-runner in a fresh private
    data directory under ``work_dir`` (removed afterwards: it holds the extravars file and the
    run's artifacts), quietly, killed after ``timeout`` seconds."""
    import ansible_runner

    private_dir(work_dir)
    private = Path(tempfile.mkdtemp(prefix="run-", dir=work_dir))
    env = {name: "" for name in os.environ if name.startswith("VPSCTL_")}  # never the orchestrator's secrets
    env.update({
        "PATH": _ansible_playbook_path(),
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(private / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(private / "tmp"),
        **(envvars or {}),
    })
    try:
        result = ansible_runner.run(
            private_data_dir=str(private), playbook=str(playbook), inventory=inventory,
            extravars=extravars, envvars=env, quiet=True, timeout=max(1, math.ceil(timeout)),
        )
        output = result.stdout.read() if result.stdout is not None else ""
        rc = result.rc if isinstance(result.rc, int) else -1
        stats = result.stats or {}
        return PlaybookResult(str(result.status), rc, _tail(output),
                              changed=sum((stats.get("changed") or {}).values()),
                              failed=sum((stats.get("failures") or {}).values())
                              + sum((stats.get("dark") or {}).values()))
    finally:
        shutil.rmtree(private, ignore_errors=True)


def ansible_runner_run(playbook: Path, extravars: dict[str, Any], *, work_dir: Path, timeout: float) -> HookResult:
    """A hook's playbook, on the control plane only (R2-no-guest-management)."""
    return run_playbook(playbook, INVENTORY, extravars, work_dir=work_dir, timeout=timeout)


_runner: Runner = ansible_runner_run


def use_runner(runner: Runner) -> Runner:
    """Swap the runner every later hook uses; returns the previous one (to put it back)."""
    global _runner
    previous, _runner = _runner, runner
    return previous


def hooks_dir(settings: Settings) -> Path | None:
    return Path(settings.hooks.directory) if settings.hooks.directory.strip() else None


def playbook_for(settings: Settings, event: str) -> Path | None:
    """``<hooks_dir>/<event>.yml`` when it exists; None when hooks are off or none is written."""
    directory = hooks_dir(settings)
    if directory is None:
        return None
    playbook = directory / f"{event}.yml"
    return playbook if playbook.is_file() else None


def extravars(settings: Settings, facts: dict[str, Any]) -> dict[str, Any]:
    """The event's facts plus where the hooks keep their files (settings, read when it runs)."""
    data = settings.hooks_data
    return {**facts, "hooks_data_dir": str(data), "inventory_path": str(data / "inventory.ini"),
            "audit_log_path": str(data / "audit.log")}


def run_hook(settings: Settings, playbook: Path, facts: dict[str, Any]) -> HookResult:
    """Run one hook's playbook with the current runner (ansible-runner unless swapped)."""
    return _runner(playbook, extravars(settings, facts), work_dir=settings.state_dir / "hook-runs",
                   timeout=settings.hooks.timeout_seconds)
