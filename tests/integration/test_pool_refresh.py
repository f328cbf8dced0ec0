"""A pool's list is refreshed while another volume of the pool is being made.

libvirtd refuses to refresh a pool while it builds a volume in it ("has asynchronous jobs
running"): a worker that starts, or a check that lists the pool, while another worker clones an
image would fail on that.  ``refresh_pool`` waits the build out; ``ensure_pool`` uses it.

The test first shows the refusal happens in its window (a plain refresh is refused while the clone
runs), then that ``ensure_pool`` in the same window returns the pool.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import libvirt
import pytest

from orchestrator.hypervisor.config import PoolConfig
from orchestrator.hypervisor.libvirt_driver import LibvirtDriver
from tests.conftest import URI

pytestmark = pytest.mark.libvirt
MIB = 1 << 20
SIZE = 512 * MIB  # random bytes: the clone copies them all (about a second here)


def volume_xml(name: str) -> str:
    return (f"<volume><name>{name}</name><capacity unit='bytes'>{SIZE}</capacity>"
            f"<target><format type='raw'/></target></volume>")


@pytest.fixture
def pool(tmp_path: Path, requires_libvirt: None) -> Iterator[libvirt.virStoragePool]:
    name = f"vpsctl-refresh-{os.getpid()}"
    LibvirtDriver(URI).ensure_pool(PoolConfig(name, str(tmp_path / name)))
    conn = libvirt.open(URI)
    pool = conn.storagePoolLookupByName(name)
    source = pool.createXML(volume_xml("source"), 0)
    stream = conn.newStream(0)
    source.upload(stream, 0, SIZE, 0)
    chunk = os.urandom(MIB)  # not zeros: a copy cannot skip them
    for _ in range(SIZE // MIB):
        stream.send(chunk)
    stream.finish()
    try:
        yield pool
    finally:
        for volume in pool.listAllVolumes(0):
            volume.delete(0)
        pool.destroy()
        pool.undefine()
        conn.close()


def while_cloning(pool: libvirt.virStoragePool, action: Callable[[], object]) -> list[object]:
    """Run ``action`` again and again while libvirtd clones the source volume; what each returned
    or raised, in order."""
    done = threading.Event()
    outcomes: list[object] = []

    def clone() -> None:
        conn = libvirt.open(URI)
        try:
            target = conn.storagePoolLookupByName(pool.name())
            target.createXMLFrom(volume_xml(f"clone-{len(target.listVolumes())}"),
                                 target.storageVolLookupByName("source"), 0)
        finally:
            conn.close()
            done.set()

    thread = threading.Thread(target=clone)
    thread.start()
    while not done.is_set():
        try:
            outcomes.append(action())
        except Exception as exc:  # what the action raised is the outcome looked at
            outcomes.append(exc)
        done.wait(0.05)
    thread.join()
    return outcomes


def test_a_plain_refresh_is_refused_while_a_volume_is_being_made(pool: libvirt.virStoragePool) -> None:
    outcomes = while_cloning(pool, lambda: pool.refresh(0))
    refused = [o for o in outcomes if isinstance(o, libvirt.libvirtError)]
    assert refused, f"no refresh was refused in {len(outcomes)} tries: the window was missed"
    assert all("asynchronous jobs running" in (o.get_error_message() or "") for o in refused), refused


def test_ensure_pool_waits_for_the_volume_being_made(pool: libvirt.virStoragePool, tmp_path: Path) -> None:
    driver = LibvirtDriver(URI)
    config = PoolConfig(pool.name(), str(tmp_path / pool.name()))
    outcomes = while_cloning(pool, lambda: driver.ensure_pool(config))
    assert outcomes, "ensure_pool never ran while the clone did"
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert not errors, errors
    assert sorted(pool.listVolumes()) == ["clone-1", "source"]
