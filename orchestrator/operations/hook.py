"""Run the Ansible hook of a lifecycle event (orchestrator/hooks.py): ``<hooks_dir>/<event>.yml``
with the event's facts, on the control plane only (R2-no-guest-management).

Queued by the worker after the operation succeeded, never asked through the API. A failed run is
a ``TransientError``: retried with back-off up to the job's ``max_attempts`` (``hook_max_attempts``),
then recorded failed with the playbook's output tail. It reports an event that already happened,
so it runs whatever the VPS's status is now (a ``vps_deleted`` hook runs on a deleted VPS).
"""

from __future__ import annotations

from orchestrator import hooks
from orchestrator.errors import TransientError
from orchestrator.models import Vps, VpsStatus
from orchestrator.operations.base import Context, Operation, Step, register


def run_playbook(ctx: Context) -> str:
    event = ctx.params["event"]
    playbook = hooks.playbook_for(ctx.settings, event)
    if playbook is None:
        return f"{event}: no playbook in the hooks directory any more; nothing run"
    result = hooks.run_hook(ctx.settings, playbook, ctx.params["facts"])
    summary = f"{event}: {playbook.name} {result.status} (rc {result.rc})"
    if not result.ok:
        raise TransientError(f"{summary}\n{result.output_tail}")
    return f"{summary}\n{result.output_tail[-600:]}"


@register
class RunHook(Operation):
    kind = hooks.HOOK_KIND
    allowed_from = frozenset(VpsStatus)
    steps = (Step("run_playbook", run_playbook),)

    @classmethod
    def check_status(cls, vps: Vps) -> None:
        """Any status: the event happened; the hook only reports it."""
