"""Run the Ansible hook of a lifecycle event: ``<hooks_dir>/<event>.yml`` with the event's facts,
on the control plane only (R2-no-guest-management; orchestrator/adapters/ansible.py).

Queued by orchestrator/workflows/hooks.py after an operation succeeded, never asked through the
API.  A failed run is a ``TransientError``: retried with back-off up to the job's
``max_attempts`` (``hook_max_attempts``), then recorded failed with the playbook's output tail.
It reports an event that already happened, so it runs whatever the VPS's status is now (a
``vps_deleted`` hook runs on a deleted VPS).
"""

from __future__ import annotations

from typing import Any

from orchestrator.adapters.ansible import playbook_for, run_hook
from orchestrator.core.errors import TransientError
from orchestrator.core.models import Vps, VpsStatus
from orchestrator.engine.context import Context
from orchestrator.engine.operation import Audience, Operation, Params, Step, register


class HookParams(Params):
    event: str
    operation_job_id: str
    facts: dict[str, Any]


def run_playbook(ctx: Context) -> str:
    args = ctx.args(HookParams)
    playbook = playbook_for(ctx.settings, args.event)
    if playbook is None:
        return f"{args.event}: no playbook in the hooks directory any more; nothing run"
    result = run_hook(ctx.settings, playbook, args.facts)
    summary = f"{args.event}: {playbook.name} {result.status} (rc {result.rc})"
    if not result.ok:
        raise TransientError(f"{summary}\n{result.output_tail}")
    return f"{summary}\n{result.output_tail[-600:]}"


@register
class RunHook(Operation[HookParams]):
    kind = "hook"
    params = HookParams
    details_for_staff = True  # the company's own automation; its output may name anything
    audience = Audience.system
    allowed_from = frozenset(VpsStatus)
    steps = (Step("run_playbook", run_playbook),)

    @classmethod
    def check_status(cls, vps: Vps) -> None:
        """Any status: the event happened; the hook only reports it."""
