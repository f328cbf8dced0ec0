"""``vpsctl`` as a remote client, run as a separate process (``python -m orchestrator.cli``)
against the API served over HTTP by uvicorn, its worker driving the real libvirtd: a tiny VPS
ordered from a plan staff published (the plan listed, the order's invoice shown) with --wait,
resized by staff and the job followed with ``job watch``, the new sizes seen from inside the
guest, its serial console reached (through a pipe and on a terminal), and deleted with its
confirmation."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import libvirt

from tests.conftest import URI, Api, client_key
from tests.integration.lifecycle import Guest, eventually, mem_total_mib
from tests.served import serving

REPO = Path(__file__).resolve().parents[2]


def vpsctl(config: Path, *args: str, stdin: str | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``vpsctl ARGS`` in a process of its own, with only the configuration file as its settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPSCTL_")}
    env.update(VPSCTL_CONFIG=str(config), PYTHONPATH=str(REPO), COLUMNS="160")
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], input=stdin if stdin is not None else "",
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def attach_console(config: Path, vps_id: str, profile: str) -> bytes:
    """``vpsctl vps console`` on a terminal (a pseudo-terminal): Enter once connected, then
    Ctrl-] once the login prompt came; everything the terminal showed."""
    primary, secondary = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPSCTL_")}
    env.update(VPSCTL_CONFIG=str(config), PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "vps", "console", vps_id, "--profile",
                                profile], stdin=secondary, stdout=secondary, stderr=secondary, env=env, cwd=REPO,
                               start_new_session=True)
    os.close(secondary)
    seen = b""

    def read_until(marker: bytes, within: float) -> None:
        nonlocal seen
        deadline = time.monotonic() + within
        while marker not in seen and time.monotonic() < deadline:
            if select.select([primary], [], [], 0.2)[0]:
                try:
                    seen += os.read(primary, 4096)
                except OSError:  # the terminal's other end closed
                    return
    try:
        read_until(b"Ctrl-] detaches", 60)
        os.write(primary, b"\r")
        read_until(b"login:", 30)
        os.write(primary, b"\x1d")
        read_until(b"detached", 10)
        assert process.wait(timeout=10) == 0, seen[-500:]
    finally:
        if process.poll() is None:
            process.kill()
        os.close(primary)
    return seen


def test_cli_creates_watches_resizes_and_deletes_a_real_vps(live_api: Api, tmp_path: Path) -> None:
    config = tmp_path / "cli" / "config.toml"
    key, public = client_key(tmp_path)
    key_file = tmp_path / "root.pub"
    key_file.write_text(public + "\n")
    with serving(live_api.client.app) as port:
        url = f"http://127.0.0.1:{port}"
        for name, token in (("alice", live_api.alice), ("staff", live_api.support)):
            added = vpsctl(config, "profile", "add", name, "--url", url, stdin=token + "\n")
            assert added.returncode == 0, added.stderr
        assert oct(config.stat().st_mode & 0o777) == "0o600"

        plan = live_api.plan(1, 256, 2)  # published by staff
        plans = vpsctl(config, "plan", "list", "-o", "json", "--profile", "alice")
        assert plans.returncode == 0, plans.stderr
        assert plan in [p["code"] for p in json.loads(plans.stdout)]

        started = time.monotonic()
        created = vpsctl(config, "vps", "create", "cli-life", "--plan", plan, "--term", "1", "--image", "tiny",
                         "--ssh-key", str(key_file), "--wait", "-o", "json", "--profile", "alice")
        assert created.returncode == 0, created.stderr
        answer: dict[str, Any] = json.loads(created.stdout)
        assert answer["job"]["status"] == "succeeded"
        # R8.1-setup-fee: ordered with its subscription and first invoice
        assert answer["order"]["plan_code"] == plan and answer["invoice"]["number"]
        invoice = live_api.call("GET", f"/v1/invoices/{answer['invoice']['id']}", live_api.alice).json()
        assert invoice["number"] == answer["order"]["invoice_number"]
        assert invoice["subscription_id"] == answer["subscription"]["id"] == answer["order"]["subscription_id"]
        vps = answer["vps"]
        assert vps["status"] == "running" and vps["addresses"] and vps["ssh_host_keys"]
        assert "start_domain done" in created.stderr and "verify_ssh done" in created.stderr
        print(f"created with --wait in {time.monotonic() - started:.1f} s")

        guest = Guest(live_api, live_api.alice, vps, key)
        assert guest.ssh("hostname").strip() == "cli-life"
        memory_before = mem_total_mib(guest)

        # staff resize it live; the job is followed by a second process
        asked = vpsctl(config, "vps", "resize", vps["id"], "--vcpus", "2", "--memory", "448",
                       "--reason", "integration test of the CLI", "-o", "json", "--profile", "staff")
        assert asked.returncode == 0, asked.stderr
        resize = json.loads(asked.stdout)
        assert resize["plan"]["mode"] == "live" and resize["plan"]["reboot"] is False
        watched = vpsctl(config, "job", "watch", resize["job"]["id"], "--profile", "alice")
        assert watched.returncode == 0, watched.stderr
        assert "memory_settled done" in watched.stderr and "(resize) succeeded" in watched.stderr

        eventually(lambda: guest.ssh("grep -c ^processor /proc/cpuinfo").strip() == "2", 60, "2 vCPUs in the guest")
        assert memory_before + 150 < mem_total_mib(guest) <= 448
        shown = json.loads(vpsctl(config, "vps", "show", vps["id"], "-o", "json", "--profile", "alice").stdout)
        assert (shown["vcpus"], shown["memory_mib"]) == (2, 448)

        # the serial console: Enter, and the login prompt comes back
        console = vpsctl(config, "vps", "console", vps["id"], "--linger", "8", "--profile", "alice", stdin="\r")
        assert console.returncode == 0, console.stderr
        assert "login:" in console.stdout, console.stdout[-500:]
        attached = attach_console(config, vps["id"], "staff")  # on a terminal: raw mode, Ctrl-] detaches
        assert b"login:" in attached and b"detached" in attached, attached[-500:]

        # delete: refused without the confirmation (nothing asked), then confirmed by name
        unconfirmed = vpsctl(config, "vps", "delete", vps["id"], "--profile", "alice")
        assert unconfirmed.returncode == 2 and "--confirm cli-life" in unconfirmed.stderr
        assert guest.record["status"] == "running"
        deleted = vpsctl(config, "vps", "delete", vps["id"], "--confirm", "cli-life", "--wait", "--profile", "alice")
        assert deleted.returncode == 0, deleted.stderr
        assert "(delete) succeeded" in deleted.stderr
    assert guest.record["status"] == "deleted"
    conn = libvirt.open(URI)
    try:
        assert vps["id"] not in [dom.UUIDString() for dom in conn.listAllDomains(0)]
    finally:
        conn.close()
