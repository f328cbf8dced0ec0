"""Fault: the storage pool full during a create, a backup and a disk grow (docs/reliability.md,
"Faults injected").

Real small pools on the real libvirtd: each is a libvirt ``fs`` pool, an ext4 filesystem in a
sparse file of the test's own directory that libvirt itself mounts (in its own mount namespace)
when the pool starts and unmounts when it stops — the VPS disks pool (8 GiB) and the backup pool
(1 GiB).  A VPS runs on them; then a pool is made really full (volumes allocated through libvirt
until not one more 4 KiB block fits: cheap, the filesystem only marks the blocks) and:

- a create fails at its first disk, the job's error saying which pool is out of space, the client
  reading a plain public error; no domain, no volume of it anywhere, the VPS ``error`` holding no
  capacity, and once deleted no quota either;
- a backup that fills the backup pool while it copies (4 MiB left when it begins) fails with the
  same clear error, leaving no volume nor file in the pool (the room is back), its record
  ``failed``, the VPS running as before; once room is made the same backup succeeds;
- a disk grow fails with the same clear error, the disk, the record and the capacity as they were,
  the VPS running; once room is made the same grow succeeds.
Each case checks that the fault happened where it says: the pool full just before the job (not
one 4 KiB volume more) and still full after it (or, for the backup, QEMU's own error from the copy
under way), and the job's failed step the one that writes to that pool."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from sqlmodel import Session, select

from orchestrator.compute import quotas
from orchestrator.compute.hosts import allocations
from orchestrator.core.db import make_engine
from orchestrator.core.models import Backup, Host, Vps
from orchestrator.hypervisor.libvirt_driver import LibvirtDriver, refresh_pool  # noqa: F401  (LibvirtDriver: libvirt's errors as exceptions, not stderr)
from tests.conftest import URI, Api, base_settings, cleanup_host, client_key, libvirt_available, serving
from tests.integration.lifecycle import Guest, order
from tests.smtp import Server, free_port

pytestmark = pytest.mark.libvirt
GIB = 1 << 30
FILLER = "filler-"
BLOCK = 4096
PUBLIC_ERROR = "the operation did not complete; the provider's staff have the details"


def fs_pool(conn: libvirt.virConnect, name: str, directory: Path, size: str) -> None:
    """An ext4 filesystem of ``size`` in a sparse file, as a libvirt fs pool mounted by libvirt."""
    image = directory / f"{name}.ext4"
    subprocess.run(["truncate", "-s", size, str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", "-E", "lazy_itable_init=1", str(image)],
                   check=True)
    pool = conn.storagePoolDefineXML(
        f"<pool type='fs'><name>{name}</name><source><device path='{image}'/><format type='ext4'/></source>"
        f"<target><path>{directory / name}</path></target></pool>", 0)
    pool.build(0)
    pool.create(0)


def drop_pool(conn: libvirt.virConnect, name: str) -> None:
    with contextlib.suppress(libvirt.libvirtError):
        pool = conn.storagePoolLookupByName(name)
        if pool.isActive():
            refresh_pool(pool)
            for volume in pool.listAllVolumes(0):
                with contextlib.suppress(libvirt.libvirtError):
                    volume.delete(0)
            pool.destroy()
        pool.undefine()


def pool_of(name: str) -> tuple[libvirt.virConnect, libvirt.virStoragePool]:
    conn = libvirt.open(URI)
    pool = conn.storagePoolLookupByName(name)
    refresh_pool(pool)
    return conn, pool


def allocate(pool: libvirt.virStoragePool, name: str, size: int) -> None:
    pool.createXML(f"<volume><name>{name}</name><capacity unit='bytes'>{size}</capacity>"
                   f"<allocation unit='bytes'>{size}</allocation><target><format type='raw'/></target></volume>", 0)


def no_room(pool: libvirt.virStoragePool) -> bool:
    """Not even 4 KiB can be allocated in the pool now."""
    try:
        allocate(pool, "probe", BLOCK)
    except libvirt.libvirtError as exc:
        return "No space left on device" in (exc.get_error_message() or "")
    pool.storageVolLookupByName("probe").delete(0)
    return False


@contextlib.contextmanager
def full(name: str, room: int = 0) -> Iterator[None]:
    """The pool filled until not one more 4 KiB block fits but for ``room`` bytes left; emptied
    again afterwards."""
    conn, pool = pool_of(name)
    try:
        if room:
            allocate(pool, f"{FILLER}room", room)
        count = 0
        for _ in range(20):  # again until a pass finds no room (blocks a refused allocation held come back)
            refresh_pool(pool)
            size, before = int(pool.info()[3]) // BLOCK * BLOCK, count
            while size >= BLOCK:  # the largest that fits, then halves of it, down to one block
                try:
                    allocate(pool, f"{FILLER}{count}", size)
                    count += 1
                except libvirt.libvirtError:
                    size = size // 2 // BLOCK * BLOCK
            if count == before and no_room(pool):
                break
        assert no_room(pool), f"pool {name} is not full"
        if room:
            pool.storageVolLookupByName(f"{FILLER}room").delete(0)
            refresh_pool(pool)
            assert not no_room(pool)
        yield
    finally:
        refresh_pool(pool)
        for volume in pool.listAllVolumes(0):
            if volume.name().startswith(FILLER):
                volume.delete(0)
        conn.close()


def volumes(name: str, vps_id: str) -> list[str]:
    """What the pool holds of the VPS (every file of its directory is a volume of an fs pool)."""
    conn, pool = pool_of(name)
    try:
        return sorted(v for v in pool.listVolumes() if vps_id in v)
    finally:
        conn.close()


def domain_of(vps_id: str) -> libvirt.virDomain | None:
    conn = libvirt.open(URI)
    try:
        return conn.lookupByUUIDString(vps_id)
    except libvirt.libvirtError:
        return None


class World:
    def __init__(self, api: Api, guest: Guest, root_pool: str, backup_pool: str) -> None:
        self.api, self.guest, self.root_pool, self.backup_pool = api, guest, root_pool, backup_pool

    def held(self) -> tuple[Any, ...]:
        """What the records hold: the host's allocations and alice's quota usage."""
        with Session(self.api.engine) as session:
            host = session.exec(select(Host)).one()
            alice = session.get(Vps, self.guest.id)
            assert alice is not None
            return allocations(session).get(host.id or 0), quotas.usage(session, alice.customer_id)

    def job(self, job_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The job as staff see it, and as its client does."""
        return (self.api.wait_job(job_id, self.api.support),
                self.api.call("GET", f"/v1/jobs/{job_id}", self.api.alice).json())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not libvirt_available():
        pytest.fail(f"libvirtd is not reachable at {URI}")
    tmp = tmp_path_factory.mktemp("pool-full")
    # QEMU (libvirt-qemu) opens the disks: not under pytest's 0700 tmp.
    directory = Path(tempfile.mkdtemp(prefix="vpsctl-full-", dir="/var/tmp"))
    directory.chmod(0o755)
    tag = f"{os.getpid()}"
    root_pool, backup_pool = f"vpsctl-full-{tag}", f"vpsctl-full-{tag}-backup"
    conn = libvirt.open(URI)
    smtp = Server(free_port())
    smtp.start()
    engine = None
    try:
        fs_pool(conn, root_pool, directory, "8G")
        fs_pool(conn, backup_pool, directory, "1G")
        settings = base_settings(tmp, storage_pool=root_pool, storage_pool_path=directory / root_pool,
                                 backup_pool=backup_pool, backup_pool_path=directory / backup_pool,
                                 reserved_host_disk_gib=0, smtp_host="127.0.0.1", smtp_port=smtp.port,
                                 outbox_poll_seconds=0.2)
        engine = make_engine(settings)
        with serving(settings, engine) as api:
            guest = order(api, tmp, name="full")
            yield World(api, guest, root_pool, backup_pool)
    finally:
        if engine is not None:
            cleanup_host(settings, engine)
        drop_pool(conn, root_pool)
        drop_pool(conn, backup_pool)
        conn.close()
        smtp.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_a_create_on_a_full_pool_fails_clearly_and_leaves_nothing(world: World, tmp_path: Path) -> None:
    api = world.api
    before = world.held()
    with full(world.root_pool):
        ordered = api.unbilled("alice", json={"name": "nofit", "image": "tiny", "vcpus": 1, "memory_mib": 256,
                                              "disk_gib": 1, "ssh_keys": [client_key(tmp_path)[1]]})
        assert ordered.status_code == 202, ordered.text
        vps_id = ordered.json()["vps"]["id"]
        staff, client = world.job(ordered.json()["job"]["id"])
        conn, pool = pool_of(world.root_pool)
        still_full = no_room(pool)
        conn.close()
    assert still_full
    assert staff["status"] == "failed"
    assert "out of space" in staff["error"] and world.root_pool in staff["error"], staff["error"]
    failed = [e for e in staff["events"] if e["status"] == "failed" and e["step"] != "rollback"]
    assert failed[0]["step"] == "create_root_disk", failed  # the step that writes in the pool
    assert client["error"] == PUBLIC_ERROR and world.root_pool not in str(client)
    # Nothing half-made: no domain, no volume; the record says so and holds nothing.
    assert domain_of(vps_id) is None
    assert volumes(world.root_pool, vps_id) == [] and volumes(world.backup_pool, vps_id) == []
    record = api.call("GET", f"/v1/vps/{vps_id}", api.alice).json()
    assert record["status"] == "error" and record["task"] is None
    assert record["error"] == PUBLIC_ERROR  # the pool's name and paths are staff's
    assert world.root_pool in api.call("GET", f"/v1/vps/{vps_id}", api.support).json()["error"]
    capacity, usage = world.held()
    assert capacity == before[0]  # the host's capacity: not held by the failed VPS
    assert usage.vps == before[1].vps + 1  # the client still sees it, in error, until they delete it
    deleted = api.call("DELETE", f"/v1/vps/{vps_id}?confirm_data_loss=true", api.alice)
    assert deleted.status_code == 202, deleted.text
    assert api.wait_job(deleted.json()["job"]["id"], api.alice)["status"] == "succeeded"
    assert world.held() == before


def test_a_backup_into_a_full_pool_fails_clearly_and_leaves_nothing(world: World) -> None:
    api, guest = world.api, world.guest
    before = world.held()
    with full(world.backup_pool, room=4 << 20):
        asked = api.call("POST", f"/v1/vps/{guest.id}/backup", api.alice, json={"note": "into a full pool"})
        assert asked.status_code == 202, asked.text
        staff, client = world.job(asked.json()["job"]["id"])
        conn, pool = pool_of(world.backup_pool)
        room_back = not no_room(pool)  # the copy's partial file went with the job
        conn.close()
    assert staff["status"] == "failed"
    assert "out of space" in staff["error"] and world.backup_pool in staff["error"], staff["error"]
    assert "backup of vda failed" in staff["error"]  # QEMU's copy met the full pool after it began
    assert room_back
    failed = [e for e in staff["events"] if e["status"] == "failed" and e["step"] != "rollback"]
    assert failed[0]["step"] == "copy_root_disk", failed
    assert client["error"] == PUBLIC_ERROR and world.backup_pool not in str(client)
    assert volumes(world.backup_pool, guest.id) == []  # no volume, no file of the copy
    with Session(api.engine) as session:
        record = session.get(Backup, staff["id"])
        assert record is not None and record.status == "failed"
    assert guest.record["status"] == "running" and guest.domain().isActive()
    assert world.held() == before  # no backup counted against alice's quota

    # Room made: the same backup succeeds.
    again = guest.do("backup", {"note": "with room"})
    assert again["status"] == "succeeded", (again["error"], again["events"][-3:])
    assert volumes(world.backup_pool, guest.id) == [f"vps-{guest.id}-backup-{again['id']}.qcow2"]


def test_a_disk_grow_on_a_full_pool_fails_clearly_and_changes_nothing(world: World) -> None:
    api, guest = world.api, world.guest
    before = world.held()
    root = f"vps-{guest.id}-root.qcow2"
    conn, pool = pool_of(world.root_pool)
    assert pool.storageVolLookupByName(root).info()[1] == 2 * GIB
    conn.close()
    with full(world.root_pool):
        asked = api.call("POST", f"/v1/vps/{guest.id}/resize", api.support,
                         json={"disk_gib": 3, "reason": "test: a grow on a full pool"})
        assert asked.status_code == 202, asked.text
        assert asked.json()["plan"]["mode"] == "live"
        staff, client = world.job(asked.json()["job"]["id"])
        conn, pool = pool_of(world.root_pool)
        still_full = no_room(pool)
        size = pool.storageVolLookupByName(root).info()[1]
        conn.close()
    assert still_full
    assert staff["status"] == "failed"
    assert "out of space" in staff["error"], staff["error"]
    failed = [e for e in staff["events"] if e["status"] == "failed" and e["step"] != "rollback"]
    assert failed[0]["step"] == "grow_disk", failed
    assert client["error"] == PUBLIC_ERROR
    assert size == 2 * GIB and guest.domain().blockInfo("vda", 0)[0] == 2 * GIB
    record = guest.record
    assert record["disk_gib"] == 2 and record["status"] == "running" and guest.domain().isActive()
    assert world.held() == before

    # Room made: the same grow succeeds.
    grown = api.call("POST", f"/v1/vps/{guest.id}/resize", api.support,
                     json={"disk_gib": 3, "reason": "test: a grow with room"})
    assert grown.status_code == 202, grown.text
    assert api.wait_job(grown.json()["job"]["id"], api.support)["status"] == "succeeded"
    assert guest.domain().blockInfo("vda", 0)[0] == 3 * GIB and guest.record["disk_gib"] == 3
