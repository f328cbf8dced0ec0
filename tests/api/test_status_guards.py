"""Every operation on a VPS tried from every status, against a table written out here from the
documented behaviour (docs/api.md, "Operations on a VPS") and what a hosting customer expects, not
read from the operations' own ``allowed_from``: an allowed status answers 202 with a job; any other
is a 409 naming the status, with no job recorded and the VPS unchanged.  (The worker re-checks the
same guard when a job starts.)  Each case starts from a snapshot of the fake world."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from orchestrator.core.models import Vps, VpsStatus
from orchestrator.engine.operation import OPERATIONS
from tests.api.fakeworld import World, make_world

B, R, S, SU, C, E, DG, DD = ("building", "running", "stopped", "suspended", "cut_off", "error",
                             "deleting", "deleted")
EVERY_STATUS = (B, R, S, SU, C, E, DG, DD)
STAFF_REASON = "contract amendment signed"

# operation -> (method, path suffix, body, caller, the statuses it is allowed from)
EXPECTED: dict[str, tuple[str, str, dict[str, Any] | None, str, set[str]]] = {
    # a VPS is started only when it is stopped (a suspended one is resumed, a cut-off one reconnected)
    "start": ("POST", "/start", None, "alice", {S}),
    # a guest that runs (even cut off the network or paused) can be shut down
    "stop": ("POST", "/stop", {"force": True}, "alice", {R, C, SU}),
    "reboot": ("POST", "/reboot", {"hard": True}, "alice", {R, C}),
    "suspend": ("POST", "/suspend", {"reason": "customer"}, "alice", {R, C}),
    "resume": ("POST", "/resume", None, "support", {SU}),
    # a client's resize or extra disk is a change order (R5.1-change-order): staff act on one
    "resize": ("POST", "/resize", {"memory_mib": 512, "reason": STAFF_REASON}, "support", {R, S, C}),
    "attach-disk": ("POST", "/disks", {"size_gib": 1, "reason": STAFF_REASON}, "support", {R, S, C}),
    "detach-disk": ("DELETE", "/disks/DISK?confirm_data_loss=true", None, "alice", {R, S, C}),
    "reinstall": ("POST", "/reinstall", {"ssh_keys": ["KEY"], "confirm_data_loss": True}, "alice", {R, S, C}),
    "restore": ("POST", "/restore", {"backup_id": "BACKUP", "confirm_data_loss": True}, "alice", {R, S, C}),
    # a copy of the disks can be taken whenever the disks are whole
    "backup": ("POST", "/backup", {}, "alice", {R, S, SU, C}),
    "export": ("POST", "/export", None, "alice", {R, S, SU, C}),
    "rename": ("POST", "/rename", {"name": "renamed"}, "alice", {R, S, SU, C}),
    # a VPS can be deleted from any status but while (or once) it is deleted, a failed one included
    "delete": ("DELETE", "?confirm_data_loss=true", None, "alice", {B, R, S, SU, C, E}),
    # a copy can be thrown away whenever, a deleted VPS's kept copy included, but while a delete
    # discards them all
    "discard-backup": ("DELETE", "/backups/BACKUP?confirm_data_loss=true", None, "alice", {B, R, S, SU, C, E, DD}),
    # R5.5-cutoff / R5.5-reconnect, R6.4-spam (staff)
    "cutoff": ("POST", "/cutoff", {"reason": "hacked"}, "support", {R, S, SU}),
    "reconnect": ("POST", "/reconnect", {"corrective_measures": "patched"}, "support", {C, S, SU}),
    "mail-block": ("POST", "/mail-block", {}, "support", {R, C, S, SU}),
    "mail-unblock": ("POST", "/mail-unblock", None, "support", {R, C, S, SU}),
}
# what an operation needs besides the status, set before it is asked (only the status decides then)
NEEDS: dict[str, dict[str, Any]] = {"mail-unblock": {"mail_blocked": True},
                                    "reconnect": {"cut_off": True, "cut_off_reason": "hacked"}}


def test_the_table_names_every_status_and_every_operation_with_a_route() -> None:
    assert set(EVERY_STATUS) == {s.value for s in VpsStatus}
    # not here: create (no VPS yet); evidence (needs the guest's network) and migrate (needs a
    # second host): guarded like the others by the engine; deadline and worker jobs (erase,
    # terminate, incident_deadline, recover, network-sync, evacuate, hook) have no route on a VPS
    elsewhere = {"create", "evidence", "migrate", "erase", "terminate", "incident_deadline", "recover",
                 "network-sync", "evacuate", "hook"}
    assert set(EXPECTED) - {"export"} | elsewhere == set(OPERATIONS)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(Path(tmp_path_factory.mktemp("guards")), "guards")


def _set(world: World, **fields: Any) -> None:
    with Session(world.api.engine) as session:
        vps = session.get(Vps, world.vps_id)
        assert vps is not None
        for name, value in fields.items():
            setattr(vps, name, value)
        session.add(vps)
        session.commit()


def _call(world: World, kind: str) -> Any:
    method, suffix, body, caller, _ = EXPECTED[kind]
    suffix = suffix.replace("DISK", world.disk_id).replace("BACKUP", world.backup_id)
    if body is not None:
        body = {k: ([world.key] if v == ["KEY"] else world.backup_id if v == "BACKUP" else v)
                for k, v in body.items()}
    return world.api.call(method, f"/v1/vps/{world.vps_id}{suffix}", getattr(world.api, caller), json=body)


@pytest.mark.parametrize("status", EVERY_STATUS)
def test_each_operation_from_each_status(world: World, status: str) -> None:
    base = world.snapshot()
    try:
        _set(world, status=VpsStatus(status))
        at_status = world.snapshot()
        wrong: list[str] = []
        for kind, (*_, allowed) in EXPECTED.items():
            if kind in NEEDS:
                _set(world, **NEEDS[kind])
            before = world.state()
            response = _call(world, kind)
            if status in allowed:
                if response.status_code != 202 or "job" not in response.json():
                    wrong.append(f"{kind} from {status}: expected 202 and a job, got "
                                 f"{response.status_code} {response.text[:200]}")
                elif world.jobs() != before[1] + 1:
                    wrong.append(f"{kind} from {status}: 202 but {world.jobs() - before[1]} jobs recorded")
                world.restore(at_status)
            else:
                problem = response.json()
                if response.status_code != 409 or problem.get("current_status") != status \
                        or f"'{status}'" not in problem.get("detail", ""):
                    wrong.append(f"{kind} from {status}: expected 409 naming it, got "
                                 f"{response.status_code} {response.text[:200]}")
                elif world.state() != before:
                    wrong.append(f"{kind} from {status}: refused but something changed")
                if kind in NEEDS or wrong:
                    world.restore(at_status)
        assert not wrong, "\n".join(wrong)
    finally:
        world.restore(base)
