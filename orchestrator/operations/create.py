"""Create a VPS: place it, then build it on its host from an image.

Check (when asked): validate sizes and keys against limits and the image, choose a host with room
(placement); then the VPS is recorded ``building`` on it, with its ``create`` job.
Plan (worker side), every step re-runnable:
  upload_image      the image's base volume on the host, recorded once fully uploaded
  create_root_disk  a qcow2 overlay of the image, of the ordered size
  create_seed       NoCloud seed: hostname, the customer's keys, SSH host keys we generate
  define_domain     the domain XML (the domain's UUID is the VPS id)
  start_domain      power on
  wait_for_address  the DHCP lease of its interface (libvirt's clean-traffic filter learns it from
                    the host's DHCP server's answer and lets nothing else through before)
  filter_address    that address pinned in the DHCP server and given to the filter: the only one
                    the guest may use (no MAC, IP or ARP spoofing of its neighbours)
  verify_ssh        the guest answers SSH with the host key we generated (no login)
Rollback: remove the domain, both volumes and the pinned address; the VPS ends ``error`` holding
nothing.

Billing (R8.1-setup-fee, R8.6-billing: the first invoice, setup fee included, is issued at order):
a customer's VPS is asked through an order (``POST /v1/orders``, orchestrator/workflows/orders.py:
the job's ``cause`` is the order), which records its subscription and first invoice in the same
transaction.  Asked directly, a customer is refused (403); staff may make an unbilled VPS only
with a ``reason``, recorded in the VPS's events.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints
from sqlmodel import select

from orchestrator.compute import quotas
from orchestrator.compute.designer import live_ceilings, mac_for, mac_of
from orchestrator.compute.hosts import best_host, hosts_of_group, policy
from orchestrator.compute.keys import normalise_authorized_key
from orchestrator.compute.placement import Resources
from orchestrator.contract.sites import check_site
from orchestrator.core.access import owner_for_create
from orchestrator.core.errors import Forbidden, InvalidRequest, NotFound, OperationFailed, TransientError
from orchestrator.core.models import Customer, Image, JobEvent, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.engine import events
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Operation, Params, Plan, Step, register
from orchestrator.operations.steps import network, provision

GIB = 1 << 30


# An RFC 1123 label: it becomes the guest's hostname, so it cannot carry markup or spaces.
VpsName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"),
]


class VpsCreate(Params):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "web1", "image": "debian-12", "vcpus": 2, "memory_mib": 2048, "disk_gib": 40,
        "ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG3mRtXdLqX9vU0aH9k8sYb0o8pVbQfK1m6GqJm0Vx4c alice@laptop"],
        "site": "Marseille"}]})
    name: VpsName = Field(description="Hostname: lowercase letters, digits and '-', 1-63 characters")
    image: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    vcpus: int = Field(ge=1, le=1024)
    memory_mib: int = Field(ge=64, le=16 * 1024 * 1024)
    disk_gib: int = Field(ge=1, le=1024 * 1024)
    ssh_keys: list[Annotated[str, StringConstraints(min_length=1, max_length=16384)]] = Field(
        min_length=1, max_length=100, description="OpenSSH public keys for root"
    )
    customer: str | None = Field(
        default=None, max_length=100, description="Owner, for staff tokens only (customers own what they create)"
    )
    site: str | None = Field(default=None, max_length=64, description="Data-centre site (R2-locations)")
    placement_group: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Anti-affinity: the customer's VPS of one placement group are never on the same host")
    reason: str | None = Field(
        default=None, max_length=500,
        description="Staff only, required: why this VPS is made without an order (it is not billed; "
                    "recorded in the VPS's events). Customers order through POST /v1/orders")


class CreatePlan(Plan):
    customer_id: int
    host_id: int
    image: str
    ssh_keys: list[str]
    max_vcpus: int
    max_memory_mib: int


def _check_limits(settings: Settings, spec: VpsCreate) -> None:
    limits = (
        ("vcpus", spec.vcpus, settings.limits.max_vcpus),
        ("memory_mib", spec.memory_mib, settings.limits.max_memory_mib),
        ("disk_gib", spec.disk_gib, settings.limits.max_disk_gib),
    )
    for field, value, ceiling in limits:
        if value < 1 or value > ceiling:
            raise InvalidRequest(f"{field} must be between 1 and {ceiling}, got {value}")
    if len(spec.ssh_keys) > settings.limits.max_ssh_keys:
        raise InvalidRequest(f"at most {settings.limits.max_ssh_keys} SSH keys")


def place(req: Request, spec: VpsCreate) -> CreatePlan:
    """Validate the order against the limits and the image, and choose a host with room."""
    session, settings = req.session, req.settings
    customer_id = owner_for_create(session, req.principal, spec.customer)
    _check_limits(settings, spec)
    image = session.get(Image, spec.image)
    if image is None:
        known = ", ".join(sorted(i.name for i in session.exec(select(Image)).all())) or "none"
        raise InvalidRequest(f"unknown image {spec.image!r} (available: {known})")
    if spec.disk_gib < image.min_disk_gib:
        raise InvalidRequest(f"image {image.name} needs a disk of at least {image.min_disk_gib} GiB")
    if spec.memory_mib < image.min_memory_mib:
        raise InvalidRequest(f"image {image.name} needs at least {image.min_memory_mib} MiB of memory")
    keys = [normalise_authorized_key(k) for k in spec.ssh_keys]
    if not keys:
        raise InvalidRequest("at least one SSH public key is needed to log in as root (R6.1-root)")
    if session.get(Customer, customer_id) is None:
        raise NotFound("no such customer")
    site = check_site(spec.site) if spec.site else None  # R2-locations
    quotas.check(session, settings, req.principal, customer_id,
                 quotas.Amounts(vps=1, vcpus=spec.vcpus, memory_mib=spec.memory_mib, disk_gib=spec.disk_gib))
    want = Resources(spec.vcpus, spec.memory_mib, spec.disk_gib)
    chosen = best_host(session, want, policy(settings), site=site,
                       avoid=hosts_of_group(session, customer_id, spec.placement_group))
    max_vcpus, max_memory_mib = live_ceilings(spec.vcpus, spec.memory_mib, settings)
    return CreatePlan(customer_id=customer_id, host_id=chosen.host_id, image=image.name, ssh_keys=keys,
                      max_vcpus=max_vcpus, max_memory_mib=max_memory_mib)


BILLED = "R8.1-setup-fee"  # the first invoice, with the setup fee, is issued at order (and R8.6-billing)
ORDERS = "POST /v1/orders"


def unbilled(req: Request, params: VpsCreate) -> None:
    """R8.1-setup-fee, R8.6-billing: a VPS asked for outside an order (no ``cause``) is not billed:
    refused to a customer, who orders instead; staff must say why (``reason``)."""
    if req.cause is not None:  # an order (or another workflow) asks: it bills the VPS itself
        if params.reason is not None:
            raise InvalidRequest("'reason' is for a staff VPS made without an order")
        return
    if not req.principal.is_staff:
        raise Forbidden(f"{BILLED}: a VPS is ordered with its subscription and first invoice: use {ORDERS} "
                        "(GET /v1/plans lists what you may order)")
    if not (params.reason or "").strip():
        raise InvalidRequest(f"{BILLED}: a VPS made without an order is not billed: staff must give a non-empty "
                             f"'reason' (or use {ORDERS})")


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
class CreateVps(Operation[VpsCreate]):
    """Create a VPS (asked by an order, or by staff without one).  Answers at once with the VPS
    (``building``) and its create job."""

    kind = "create"
    params = VpsCreate
    allowed_from = frozenset({VpsStatus.building})
    steps = (
        Step("upload_image", upload_image),
        Step("create_root_disk", create_root_disk),
        Step("create_seed", create_seed),
        Step("define_domain", define_domain),
        Step("start_domain", start_domain),
        Step("wait_for_address", provision.wait_for_address),
        Step("filter_address", network.filter_address),
        Step("verify_ssh", provision.verify_ssh),
    )

    @classmethod
    def check(cls, req: Request, params: VpsCreate) -> CreatePlan | None:
        if req.vps is not None:  # the worker, at start: the VPS holds its place already
            if req.session.get(Image, req.vps.image) is None:
                raise InvalidRequest(f"image {req.vps.image} is no longer registered")
            return None
        unbilled(req, params)
        return place(req, params)

    @classmethod
    def prepare(cls, req: Request, params: VpsCreate, plan: Plan | None) -> Vps | None:
        """The VPS record, ``building``, on the chosen host: its resources are held from now."""
        assert isinstance(plan, CreatePlan)
        vps = Vps(name=params.name, max_vcpus=plan.max_vcpus, max_memory_mib=plan.max_memory_mib,
                  customer_id=plan.customer_id, host_id=plan.host_id, image=plan.image, vcpus=params.vcpus,
                  memory_mib=params.memory_mib, disk_gib=params.disk_gib, status=VpsStatus.building,
                  ssh_authorized_keys=plan.ssh_keys, placement_group=params.placement_group)
        vps.mac = mac_for(vps.id)
        req.session.add(vps)
        req.session.flush()
        return vps

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=VpsStatus.running, error=None)
        provision.send_delivery_report(ctx)

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        """Remove what the steps made on the host; the VPS ends ``error``, holding no capacity,
        even when its host does not answer (it vanished during the create): what the host still
        holds of it then goes when the VPS is deleted (each step of a delete looks first)."""
        vps, host = ctx.vps(), ctx.host()
        try:
            driver = ctx.driver
            driver.destroy_domain(vps.id)
            driver.undefine_domain(vps.id)
            driver.delete_volume(host.pool_name, vps.root_volume)
            driver.delete_volume(host.pool_name, vps.seed_volume)
            driver.unpin_address(host.network_name, mac_of(vps))
        except Exception as exc:
            why = (f"host {host.name} does not answer" if isinstance(exc, TransientError)
                   else f"undoing it on host {host.name} failed")
            left = f"{why} ({exc}): what it holds of the VPS is removed when the VPS is deleted"
            ctx.update_vps(status=VpsStatus.error, addresses=[], error=f"{error}; {left}"[:2000])
            raise OperationFailed(left) from exc
        ctx.update_vps(status=VpsStatus.error, addresses=[], error=str(error)[:2000])


@events.on_requested(CreateVps.kind)
def _record_why_unbilled(event: events.Requested) -> None:
    """The VPS's events say why staff made it without an order (R8.1-setup-fee, R8.6-billing)."""
    if event.request.cause is None:
        reason = (getattr(event.params, "reason", None) or "").strip()
        event.request.session.add(JobEvent(
            job_id=event.job.id, vps_id=event.job.vps_id, step="queued", status="info",
            actor=str(event.request.principal),
            message=f"{BILLED}: unbilled VPS made by staff without an order: {reason}"[:2000]))
