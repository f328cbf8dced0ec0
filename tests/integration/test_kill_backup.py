"""A backup and an export killed at each of their points (tests/integration/killpoints), the
copy in flight included (QEMU's backup job running, the export half streamed): once resumed,
each backup is whole in the backup pool with nothing half-made beside it, an export's file is
byte for byte its volume, and the guest never stopped."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlmodel import Session, select

from orchestrator.core.models import Backup
from orchestrator.operations import backup
from tests.integration.killpoints import Drill
from tests.integration.killpoints import drill as drill

pytestmark = pytest.mark.libvirt

# Points of the steps a backup goes through (orchestrator/operations/backup.py), written out here.
MANUAL = ["backup:before:copy_root_disk", "backup:during:copy_root_disk", "backup:after:copy_root_disk",
          "backup:before:replicate"]
EXPORT = ["backup:during:fetch_export", "backup:after:fetch_export"]
shared: dict[str, str] = {}
made: list[str] = []


def sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def whole(drill: Drill, vps_id: str, job_id: str) -> Backup:
    made.append(job_id)
    with Session(drill.engine) as session:
        record = session.exec(select(Backup).where(Backup.id == job_id)).one()
        session.expunge(record)
    assert record.status == "available" and record.size_bytes > 0, record
    # every backup made so far, each once, and nothing else (no copy left half-made by a kill)
    assert drill.backups_on_host(vps_id) == sorted(f"vps-{vps_id}-backup-{b}.qcow2" for b in made)
    vps = drill.vps(vps_id)
    assert (vps.status, vps.task) == ("running", None)
    assert drill.on_host(vps_id)["domain"] == "running"
    return record


@pytest.mark.parametrize("point", MANUAL)
def test_a_backup_killed_at_a_point_ends_whole(drill: Drill, point: str) -> None:
    vps_id = shared.get("vps") or shared.setdefault("vps", drill.create_vps())
    job_id = drill.killed_at(point, lambda: drill.ask(vps_id, backup.BackupVps, backup.BackupParams(kind="manual")))
    record = whole(drill, vps_id, job_id)
    assert record.consistency in ("quiesced", "crash-consistent")  # copied from the running guest


@pytest.mark.parametrize("point", EXPORT)
def test_an_export_killed_at_a_point_ends_with_its_file_whole(drill: Drill, point: str) -> None:
    vps_id = shared.get("vps") or shared.setdefault("vps", drill.create_vps())
    job_id = drill.killed_at(point, lambda: drill.ask(vps_id, backup.BackupVps, backup.BackupParams(kind="export")))
    record = whole(drill, vps_id, job_id)
    exports = drill.settings.state_dir / "exports"
    assert sorted(p.name for p in exports.iterdir() if job_id in p.name) == [f"{job_id}.qcow2"]  # no .part left
    volume = drill.settings.hosts.backup_pool_path / record.volume
    assert sha256(exports / f"{job_id}.qcow2") == sha256(volume)
