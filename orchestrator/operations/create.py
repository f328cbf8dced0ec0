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

from sqlmodel import Session, select

from orchestrator import jobs
from orchestrator.auth import Principal
from orchestrator.contract.sites import check_site
from orchestrator.designer import live_ceilings, mac_for
from orchestrator.errors import InvalidRequest, NotFound
from orchestrator.hosts import candidates, policy
from orchestrator.keys import normalise_authorized_key
from orchestrator.models import Customer, Image, Job, Vps, VpsStatus
from orchestrator.operations import provision
from orchestrator.operations.base import Context, Operation, Step, register
from orchestrator.placement import Resources, choose_host
from orchestrator.settings import Settings

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
    return provision.ensure_image(ctx, ctx.vps().image)


def create_root_disk(ctx: Context) -> str:
    vps = ctx.vps()
    return provision.create_root(ctx, vps.root_volume, vps.image, vps.disk_gib)


def create_seed(ctx: Context) -> str:
    vps = ctx.vps()
    key = provision.write_seed(ctx, vps.seed_volume, vps.id, vps.ssh_authorized_keys)
    # Recorded after the seed is written, so the fingerprint shown always matches the seed.
    ctx.update_vps(ssh_host_keys=[key])
    return f"seed with host key {key['fingerprint']}"


def define_domain(ctx: Context) -> str:
    return ctx.define()


def start_domain(ctx: Context) -> str:
    ctx.driver.start_domain(ctx.vps().id)
    return "running"


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
        Step("wait_for_address", provision.wait_for_address),
        Step("verify_ssh", provision.verify_ssh),
    )

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=VpsStatus.running, error=None)
        provision.send_delivery_report(ctx)

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        vps, host = ctx.vps(), ctx.host()
        driver = ctx.driver
        driver.destroy_domain(vps.id)
        driver.undefine_domain(vps.id)
        driver.delete_volume(host.pool_name, vps.root_volume)
        driver.delete_volume(host.pool_name, vps.seed_volume)
        ctx.update_vps(status=VpsStatus.error, addresses=[], error=str(error)[:2000])
