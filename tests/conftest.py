"""Shared fixtures.  Integration tests use the real libvirtd that scripts/test.sh starts in the
network namespace $VPSCTL_TEST_NETNS; guests are reached through that namespace only."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from base64 import b64decode
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.app import create_app
from orchestrator.core.accounts import create_customer
from orchestrator.core.auth import create_token
from orchestrator.core.db import make_engine
from orchestrator.core.models import Host, Image, Role, Vps
from orchestrator.core.settings import Settings
from tests.smtp import Server, free_port

NETNS = os.environ.get("VPSCTL_TEST_NETNS", "vpsctl-test")
URI = os.environ.get("VPSCTL_TEST_LIBVIRT_URI", "qemu:///system")
IMAGE_CACHE = Path(os.environ.get("VPSCTL_IMAGE_CACHE_DIR", "/var/cache/vpsctl/images"))
TEST_POOL = "vpsctl-test"
# Apart from the default deployment's 192.168.150.0/24, so both can share one libvirtd.
TEST_SUBNET = "192.168.151.0/24"
TEST_GATEWAY = "192.168.151.1"


def netns_exists() -> bool:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return any(line.split()[0] == NETNS for line in out.splitlines() if line.strip())


def proxy_command() -> str:
    """How the test process reaches a guest: through the namespace libvirtd runs in."""
    return f"ip netns exec {NETNS} nc -w 10 %h %p" if netns_exists() else ""


def libvirt_available() -> bool:
    try:
        import libvirt

        conn = libvirt.open(URI)
        conn.close()
        return True
    except Exception:
        return False


def base_settings(tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "state_dir": tmp,
        "libvirt_uri": URI,
        "storage_pool": TEST_POOL,
        "storage_pool_path": Path("/var/lib/libvirt") / TEST_POOL,
        "backup_pool": TEST_POOL + "-backup",
        "backup_pool_path": Path("/var/lib/libvirt") / (TEST_POOL + "-backup"),
        "guest_network": "vpsctl-test",
        "guest_bridge": "vpstest0",
        "guest_subnet": TEST_SUBNET,
        "image_cache_dir": IMAGE_CACHE,
        "job_lease_seconds": 6.0,
        "job_heartbeat_seconds": 1.0,
        "job_poll_seconds": 0.1,
        "address_timeout_seconds": 120.0,
        "ssh_ready_timeout_seconds": 120.0,
        "guest_proxy_command": proxy_command(),
        "hooks_dir": "",  # Ansible hooks off unless a test turns them on (tests/integration/test_hooks.py)
        # Tests call faster than any client may; tests/api/test_quotas.py checks the limit itself.
        "api_rate_per_minute": 1_000_000,
        # The tests' webhook receivers listen on loopback; tests/api/test_webhooks.py checks that
        # only public addresses receive webhooks when this is off (the default).
        "webhook_private_targets": True,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return base_settings(tmp_path)


@pytest.fixture
def requires_libvirt() -> None:
    if not libvirt_available():
        if os.environ.get("VPSCTL_TEST_REQUIRE_LIBVIRT") == "1":
            pytest.fail(f"libvirtd is not reachable at {URI}")
        pytest.skip(f"libvirtd is not reachable at {URI} (scripts/test.sh starts one)")


class Api:
    """A TestClient plus the tokens of a small world: staff, alice and bob."""

    smtp: Server | None = None

    def __init__(self, client: TestClient, engine: Any, settings: Settings) -> None:
        self.client = client
        self.engine = engine
        self.settings = settings
        with Session(engine) as session:
            for name, language in (("alice", "fr"), ("bob", "en"), ("carol", "fr")):
                create_customer(session, name, f"{name}@example.test", language, actor="tests")
            session.commit()
            self.support = create_token(session, Role.support)
            self.alice = create_token(session, Role.customer, "alice")
            self.bob = create_token(session, Role.customer, "bob")

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.request(method, path, headers=headers, **kwargs)

    def customer_of(self, token: str) -> str:
        """The name of the customer a token of this world's is for."""
        return {self.alice: "alice", self.bob: "bob"}[token]

    def plan(self, vcpus: int = 1, memory_mib: int = 256, disk_gib: int = 2) -> str:
        """The code of a plan of these sizes on offer (published by staff the first time): every
        term, any image and site, 10.00 a month, no setup fee."""
        code = f"p{vcpus}-{memory_mib}-{disk_gib}"
        if self.call("GET", f"/v1/plans/{code}", self.support).status_code == 404:
            published = self.call("POST", "/v1/plans", self.support, json={
                "code": code, "name": code, "vcpus": vcpus, "memory_mib": memory_mib, "disk_gib": disk_gib,
                "terms": [1, 3, 6, 12, 24], "monthly_price_ht": "10.00", "setup_fee_ht": "0.00"})
            assert published.status_code == 201, published.text
        return code

    def order(self, token: str, json: dict[str, Any], **kwargs: Any) -> Any:
        """A customer's VPS, ordered (``POST /v1/orders``, R8.1-setup-fee) from a plan of the sizes
        ``json`` gives in ``POST /v1/vps``'s terms; the answer holds ``vps`` and ``job`` like
        ``POST /v1/vps``'s (and the order, subscription and first invoice)."""
        body = dict(json)
        sizes = {k: body.pop(k) for k in ("vcpus", "memory_mib", "disk_gib") if k in body}
        body = {"plan": self.plan(**sizes), "term_months": 1, **body}
        return self.call("POST", "/v1/orders", token, json=body, **kwargs)

    def unbilled(self, customer: str, json: dict[str, Any], **kwargs: Any) -> Any:
        """A VPS staff make for ``customer`` without an order (``POST /v1/vps`` with a reason): no
        subscription, no invoice, for tests that bill it themselves or do not bill it."""
        body = {**json, "customer": customer, "reason": "test: a VPS made without an order"}
        return self.call("POST", "/v1/vps", self.support, json=body, **kwargs)

    def wait_mail(self, subject_part: str, timeout: float = 30) -> Any:
        """The first received message whose subject contains ``subject_part``."""
        assert self.smtp is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for received in self.smtp.collector.received:
                if subject_part in str(received.message["Subject"]):
                    return received
            time.sleep(0.2)
        subjects = [str(r.message["Subject"]) for r in self.smtp.collector.received]
        raise AssertionError(f"no mail about {subject_part!r}; received: {subjects}")

    def wait_job(self, job_id: str, token: str, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.call("GET", f"/v1/jobs/{job_id}", token).json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return dict(job)
            time.sleep(0.25)
        raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def register_image(engine: Any, settings: Settings, name: str = "tiny") -> Image:
    from orchestrator.compute import images

    recipe = images.catalog(settings)[name]
    path = settings.images_cache / f"{name}.qcow2"
    if not path.exists():
        pytest.fail(f"image {name} is not built in {path} (scripts/test.sh builds it)")
    with Session(engine) as session:
        return images.register(session, recipe, path)


@pytest.fixture
def offline_api(tmp_path: Path) -> Iterator[Api]:
    """The API with a recorded host and image but no worker and no hypervisor behind it: for
    checks that must be decided before anything reaches a host."""
    settings = base_settings(tmp_path)
    app = create_app(settings, run_worker=False)
    engine = app.state.engine
    with Session(engine) as session:
        session.add(Host(name="h1", uri="test:///default", site="Marseille", vcpus=4, memory_mib=8192,
                         disk_gib=100))
        session.add(Image(name="tiny", os="Tiny Linux", sha256="0" * 64, path="/nonexistent",
                          min_disk_gib=1, min_memory_mib=128))
        session.commit()
    with TestClient(app) as client:
        yield Api(client, engine, settings)


@pytest.fixture
def smtp() -> Iterator[Server]:
    """A real SMTP server on loopback that keeps what it receives."""
    server = Server(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_api(tmp_path: Path, requires_libvirt: None, smtp: Server) -> Iterator[Api]:
    """The API with an in-process worker driving the real libvirtd, and its outbox sending to a
    real SMTP server on loopback (``api.smtp``)."""
    settings = base_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=smtp.port, outbox_poll_seconds=0.2)
    engine = make_engine(settings)
    with serving(settings, engine) as api:
        api.smtp = smtp
        yield api
    cleanup_host(settings, engine)


@contextlib.contextmanager
def serving(settings: Settings, engine: Any) -> Iterator[Api]:
    """The API with an in-process worker on ``engine``, the test libvirtd registered as host
    ``local`` (Marseille) and the tiny image registered."""
    from orchestrator.compute.hosts import Drivers, register_host

    drivers = Drivers()
    with Session(engine) as session:
        register_host(session, settings, drivers, "local", settings.hosts.libvirt_uri, "Marseille")
    drivers.close()
    register_image(engine, settings)
    app = create_app(settings, run_worker=True)
    with TestClient(app) as client:
        yield Api(client, app.state.engine, settings)


def cleanup_host(settings: Settings, engine: Any) -> None:
    """Leave the test host as found: the domains, volumes and pinned addresses of the VPS this
    test recorded go.  Other test runs may share the libvirtd: what they made is left alone (and
    one of theirs may be removing ours at the same moment: each removal stands on its own)."""
    import libvirt

    from orchestrator.hypervisor.libvirt_driver import LibvirtDriver, refresh_pool

    with Session(engine) as session:
        recorded = {vps.id.lower(): vps.mac for vps in session.exec(select(Vps)).all()}
    conn = libvirt.open(settings.hosts.libvirt_uri)
    try:
        for dom in conn.listAllDomains(0):
            if dom.UUIDString().lower() in recorded:
                for action in (dom.destroy, dom.undefine):
                    with contextlib.suppress(libvirt.libvirtError):  # gone already
                        action()
        for name in (settings.hosts.storage_pool, settings.hosts.backup_pool):
            with contextlib.suppress(libvirt.libvirtError):
                pool = conn.storagePoolLookupByName(name)
                refresh_pool(pool)
                for vol in pool.listAllVolumes(0):
                    if any(vol.name().lower().startswith(f"vps-{vps_id}-") for vps_id in recorded):
                        with contextlib.suppress(libvirt.libvirtError):
                            vol.delete(0)
    finally:
        conn.close()
    driver = LibvirtDriver(settings.hosts.libvirt_uri)
    try:
        for mac in filter(None, recorded.values()):
            driver.unpin_address(settings.hosts.guest_network, mac)
    finally:
        driver.close()


def client_key(tmp_path: Path) -> tuple[paramiko.Ed25519Key, str]:
    """A customer's key pair, made with ssh-keygen as a customer would."""
    path = tmp_path / f"id_ed25519_{time.monotonic_ns()}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test@client", "-f", str(path)],
                   check=True)
    public = path.with_suffix(".pub").read_text().strip()
    return paramiko.Ed25519Key.from_private_key_file(str(path)), public


def ssh_run(address: str, host_public_key: str, key: paramiko.PKey, command: str, timeout: float = 60,
            proxy: str | None = None) -> str:
    """Log in as root, verifying the host key the orchestrator reported (no trust on first use);
    through ``proxy`` (a guest of another test host), else the main test host's namespace."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    key_type, blob = host_public_key.split()[:2]
    client.get_host_keys().add(address, key_type, paramiko.PKey.from_type_string(key_type, b64decode(blob)))
    proxy = proxy if proxy is not None else proxy_command()
    sock = paramiko.ProxyCommand(proxy.replace("%h", address).replace("%p", "22")) if proxy else None
    try:
        client.connect(address, username="root", pkey=key, sock=sock, timeout=timeout, banner_timeout=timeout,
                       auth_timeout=timeout, allow_agent=False, look_for_keys=False)
        _stdin, stdout, _stderr = client.exec_command(command, timeout=timeout)
        return str(stdout.read().decode())
    finally:
        client.close()


@pytest.fixture
def clock() -> Iterator[Any]:
    """Move the orchestrator's clock (``clock.travel_to(instant)``, ``clock.advance(delta)``) for the
    in-process API, worker and outbox; put back afterwards."""
    from orchestrator.core import clock as module
    from orchestrator.engine import jobs

    class Clock:
        def travel_to(self, instant: Any) -> None:
            module.travel_to(instant)
            jobs.notify()

        def advance(self, delta: Any) -> None:
            module.advance(delta)
            jobs.notify()

    yield Clock()
    module.reset()


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def ask_job(engine: Any, settings: Settings, principal: Any, vps_id: str | None, operation: Any, params: Any,
            **options: Any) -> str:
    """Ask for an operation as the API would (orchestrator.engine.operation.request), commit, and
    answer the job's id."""
    from orchestrator.core.models import Vps
    from orchestrator.engine.context import Request
    from orchestrator.engine.operation import request

    with Session(engine, expire_on_commit=False) as session:
        vps = session.get(Vps, vps_id) if vps_id else None
        job = request(Request(session, settings, principal, vps), operation, params, **options)
        session.commit()
        return job.id


def until(what: str, probe: Callable[[], Any], within: float = 60) -> Any:
    """``probe``'s first true answer, looked for every 50 ms; AssertionError naming ``what`` after
    ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(0.05)
