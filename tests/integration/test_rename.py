"""``rename`` on the real libvirtd: the operation added by one module and one router line
(orchestrator/operations/rename.py).  The record and the domain's persistent title change; the
guest runs on undisturbed (same boot); another customer cannot rename it; a stopped VPS starts
with its new title."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

from tests.conftest import Api
from tests.integration.lifecycle import order

pytestmark = pytest.mark.libvirt


def titles(guest_domain: libvirt.virDomain) -> tuple[str, str]:
    """(live title, persistent title) of the domain."""
    live = ET.fromstring(guest_domain.XMLDesc(0)).findtext("title") or ""
    persistent = ET.fromstring(guest_domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).findtext("title") or ""
    return live, persistent


def test_rename_changes_the_record_and_the_definition_not_the_running_guest(live_api: Api, tmp_path: Path) -> None:
    guest = order(live_api, tmp_path, name="before")
    boot_id = guest.ssh("cat /proc/sys/kernel/random/boot_id").strip()
    assert titles(guest.domain()) == ("before", "before")

    path = f"/v1/vps/{guest.id}/rename"
    assert live_api.call("POST", path, live_api.bob, json={"name": "mine"}).status_code == 404
    assert live_api.call("POST", path, guest.token, json={"name": "Not A Hostname"}).status_code == 422
    same = live_api.call("POST", path, guest.token, json={"name": "before"})
    assert same.status_code == 422 and "already called" in same.json()["detail"]

    job = guest.do("rename", {"name": "after"})
    assert job["status"] == "succeeded", job
    assert [e["step"] for e in job["events"] if e["status"] == "done"] == ["record_name", "redefine"]
    assert guest.record["name"] == "after"
    # the persistent definition carries the new title; the running domain keeps its own until it restarts
    assert titles(guest.domain()) == ("before", "after")
    assert guest.ssh("cat /proc/sys/kernel/random/boot_id").strip() == boot_id  # the guest was not touched

    assert guest.do("stop", {"force": True})["status"] == "succeeded"
    assert guest.do("start")["status"] == "succeeded"
    assert titles(guest.domain()) == ("after", "after")
