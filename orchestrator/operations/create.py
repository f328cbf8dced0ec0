"""Create a VPS: place it, then build it on its host from an image.

Request (API side): validate sizes and keys against limits and the image, choose a host with room
(placement), record the VPS as ``building`` and a ``create`` job.
Plan (worker side), every step re-runnable:
  upload_image      the image's base volume on the host, recorded once fully uploaded
  create_root_disk  a qcow2 overlay of the image, of the ordered size
  create_seed       NoCloud seed: hostname, the customer's keys, SSH host keys we generate
  define_domain     the domain XML (the domain's UUID is the VPS id)
  start_domain      power on
  wait_for_address  the DHCP lease of its interface
  verify_ssh        the guest answers SSH with the host key we generated (no login)
Rollback: remove the domain and both volumes; the VPS ends ``error`` holding nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

from orchestrator import jobs
from orchestrator.auth import Principal
from orchestrator.contract.sites import check_site
from orchestrator.db import session_scope
from orchestrator.designer import live_ceilings, mac_for
from orchestrator.errors import InvalidRequest, NotFound, OperationFailed
from orchestrator.hosts import candidates, policy
from orchestrator.hypervisor import VolumeConfig
from orchestrator.images import volume_name
from orchestrator.keys import generate_host_key, normalise_authorized_key
from orchestrator.models import Customer, Host, HostImage, Image, Job, Vps, VpsStatus
from orchestrator.operations.base import Context, Operation, Step, register, wait_until
from orchestrator.placement import Resources, choose_host
from orchestrator.seed import Seed
from orchestrator.settings import Settings
from orchestrator.ssh import matches_host_key

GIB = 1 << 30


@dataclass(frozen=True)
class CreateRequest:
    name: str
    image: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    ssh_keys: tuple[str, ...]
    customer_id: int
    site: str | None = None


def request(
    session: Session, settings: Settings, principal: Principal, spec: CreateRequest,
    idempotency_key: str | None = None,
) -> tuple[Vps, Job]:
    """Validate, place and record; nothing touches a hypervisor here."""
    if idempotency_key:
        earlier = jobs.find_idempotent(session, str(principal), idempotency_key)
        if earlier is not None and earlier.vps_id:
            vps = session.get(Vps, earlier.vps_id)
            if vps is not None:
                return vps, earlier
    _check_limits(settings, spec)
    image = session.get(Image, spec.image)
    if image is None:
        known = ", ".join(sorted(i.name for i in session.exec(select(Image)).all())) or "none"
        raise InvalidRequest(f"unknown image {spec.image!r} (available: {known})")
    if spec.disk_gib < image.min_disk_gib:
        raise InvalidRequest(f"image {image.name} needs a disk of at least {image.min_disk_gib} GiB")
    if spec.memory_mib < image.min_memory_mib:
        raise InvalidRequest(f"image {image.name} needs at least {image.min_memory_mib} MiB of memory")
    keys = tuple(normalise_authorized_key(k) for k in spec.ssh_keys)
    if not keys:
        raise InvalidRequest("at least one SSH public key is needed to log in as root (R6.1-root)")
    if session.get(Customer, spec.customer_id) is None:
        raise NotFound("no such customer")

    site = check_site(spec.site) if spec.site else None  # R2-locations
    want = Resources(spec.vcpus, spec.memory_mib, spec.disk_gib)
    chosen = choose_host(candidates(session), want, policy(settings), site=site)
    max_vcpus, max_memory_mib = live_ceilings(spec.vcpus, spec.memory_mib, settings)
    vps = Vps(
        name=spec.name,
        max_vcpus=max_vcpus,
        max_memory_mib=max_memory_mib,
        customer_id=spec.customer_id,
        host_id=chosen.host_id,
        image=image.name,
        vcpus=spec.vcpus,
        memory_mib=spec.memory_mib,
        disk_gib=spec.disk_gib,
        status=VpsStatus.building,
        ssh_authorized_keys=list(keys),
    )
    vps.mac = mac_for(vps.id)
    session.add(vps)
    session.flush()
    job = jobs.enqueue(
        session, CreateVps.kind, vps, {}, str(principal), len(CreateVps.steps),
        settings.job_max_attempts, idempotency_key,
    )
    session.commit()
    jobs.notify()
    return vps, job


def _check_limits(settings: Settings, spec: CreateRequest) -> None:
    limits = (
        ("vcpus", spec.vcpus, settings.max_vcpus),
        ("memory_mib", spec.memory_mib, settings.max_memory_mib),
        ("disk_gib", spec.disk_gib, settings.max_disk_gib),
    )
    for field, value, ceiling in limits:
        if value < 1 or value > ceiling:
            raise InvalidRequest(f"{field} must be between 1 and {ceiling}, got {value}")
    if len(spec.ssh_keys) > settings.max_ssh_keys:
        raise InvalidRequest(f"at most {settings.max_ssh_keys} SSH keys")


# --- plan ------------------------------------------------------------------------------------

def upload_image(ctx: Context) -> str:
    vps, host = ctx.vps(), ctx.host()
    with session_scope(ctx.engine) as session:
        image = session.get(Image, vps.image)
        if image is None:
            raise OperationFailed(f"image {vps.image} is no longer registered")
        session.expunge(image)
        done = session.exec(
            select(HostImage).where(HostImage.host_id == host.id, HostImage.image_name == image.name,
                                    HostImage.sha256 == image.sha256)
        ).first()
    name = volume_name(image)
    if done is not None and ctx.driver.volume_path(host.pool_name, name) == done.path:
        return f"{name} already on {host.name}"
    # Not recorded as complete: whatever is there may be a half-written upload.
    ctx.driver.delete_volume(host.pool_name, name)
    path = ctx.driver.upload_volume(
        host.pool_name,
        VolumeConfig(name=name, capacity_bytes=image.virtual_size_bytes or image.size_bytes),
        Path(image.path),
    )
    with session_scope(ctx.engine) as session:
        session.merge(HostImage(host_id=host.id or 0, image_name=image.name, sha256=image.sha256,
                                volume=name, path=path))
    return f"uploaded {image.size_bytes} bytes as {name}"


def _base_path(ctx: Context, vps: Vps, host: Host) -> str:
    with session_scope(ctx.engine) as session:
        image = session.get(Image, vps.image)
        record = image and session.exec(
            select(HostImage).where(HostImage.host_id == host.id, HostImage.image_name == image.name,
                                    HostImage.sha256 == image.sha256)
        ).first()
        if record is None:
            raise OperationFailed(f"image {vps.image} is not on host {host.name}")
        return record.path


def create_root_disk(ctx: Context) -> str:
    vps, host = ctx.vps(), ctx.host()
    if ctx.driver.volume_path(host.pool_name, vps.root_volume):
        return "root disk already exists"
    ctx.driver.create_volume(
        host.pool_name,
        VolumeConfig(name=vps.root_volume, capacity_bytes=vps.disk_gib * GIB,
                     backing_path=_base_path(ctx, vps, host)),
    )
    return f"{vps.disk_gib} GiB qcow2 overlay of {vps.image}"


def create_seed(ctx: Context) -> str:
    # New host keys on every run of this step: the private half exists only in the seed, so if
    # a crash left us unsure which seed is on the host, we make both anew.
    vps, host = ctx.vps(), ctx.host()
    key = generate_host_key()
    seed = Seed(instance_id=vps.id, hostname=vps.name, authorized_keys=tuple(vps.ssh_authorized_keys),
                host_key=key)
    content = seed.to_iso()
    ctx.driver.delete_volume(host.pool_name, vps.seed_volume)
    ctx.driver.create_volume(
        host.pool_name, VolumeConfig(name=vps.seed_volume, capacity_bytes=len(content), format="raw"), content
    )
    ctx.update_vps(ssh_host_keys=[{"type": key.key_type, "public_key": key.public_openssh,
                                   "fingerprint": key.fingerprint}])
    return f"seed with host key {key.fingerprint}"


def define_domain(ctx: Context) -> str:
    return ctx.define()


def start_domain(ctx: Context) -> str:
    vps = ctx.vps()
    ctx.driver.start_domain(vps.id)
    return "running"


def wait_for_address(ctx: Context) -> str:
    vps = ctx.vps()

    def lease() -> str | None:
        addresses = ctx.driver.interface_addresses(vps.id)
        if addresses:
            ctx.update_vps(addresses=addresses)
            return ", ".join(addresses)
        return None

    return wait_until(ctx, ctx.settings.address_timeout_seconds, "a DHCP lease", lease)


def verify_ssh(ctx: Context) -> str:
    if not ctx.settings.verify_guest_ssh:
        return "skipped (VPSCTL_VERIFY_GUEST_SSH=false)"
    vps = ctx.vps()
    expected = vps.ssh_host_keys[0]["public_key"]
    address = next((a for a in vps.addresses if ":" not in a), vps.addresses[0])

    def answer() -> str | None:
        try:
            if matches_host_key(address, expected, proxy_command=ctx.settings.guest_proxy_command,
                                timeout=5.0):
                return f"{address}:22 presents {vps.ssh_host_keys[0]['fingerprint']}"
        except Exception:  # not up yet: refused, reset, timed out
            return None
        raise OperationFailed(f"{address}:22 presents a host key that is not the one generated for it")

    return wait_until(ctx, ctx.settings.ssh_ready_timeout_seconds, "SSH answering", answer)


@register
class CreateVps(Operation):
    kind = "create"
    allowed_from = frozenset({VpsStatus.building})
    steps = (
        Step("upload_image", upload_image),
        Step("create_root_disk", create_root_disk),
        Step("create_seed", create_seed),
        Step("define_domain", define_domain),
        Step("start_domain", start_domain),
        Step("wait_for_address", wait_for_address),
        Step("verify_ssh", verify_ssh),
    )

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=VpsStatus.running, error=None)

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        vps, host = ctx.vps(), ctx.host()
        driver = ctx.driver
        driver.destroy_domain(vps.id)
        driver.undefine_domain(vps.id)
        driver.delete_volume(host.pool_name, vps.root_volume)
        driver.delete_volume(host.pool_name, vps.seed_volume)
        ctx.update_vps(status=VpsStatus.error, addresses=[], error=str(error)[:2000])
