"""Reinstall a VPS (R6.2-reinstall): a new root disk from the image the VPS was ordered with (or
another from the catalog), new SSH host keys, new root credentials (the customer's new keys).

Needs ``confirm_data_loss: true``. The new disk and seed are a new *generation* laid beside the
old ones; the old root disk is discarded only once the new system answers SSH with its new host
key, or kept as a backup when asked (``keep_old_disk``). If the new system does not come up, the
VPS goes back to its old disk. A cut-off VPS stays cut off (R5.5-cutoff): the definition is
always built from the record.  ``restore`` (orchestrator/operations/restore.py) switches disks
the same way, from a backup.

R6.2-notice: a VPS reported hacked is reinstalled by its compromise's deadline job; an earlier
reinstall is refused by orchestrator/workflows/compromise.py when asked.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, TypeVar

from pydantic import BaseModel, Field, StringConstraints

from orchestrator.compute.keys import normalise_authorized_key
from orchestrator.core.db import session_scope
from orchestrator.core.errors import InvalidRequest
from orchestrator.core.models import Backup, Image, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Operation, Params, Plan, Step, register
from orchestrator.operations.steps import network, provision
from orchestrator.operations.steps.power import power_off, running_status

POWERED = (VpsStatus.running, VpsStatus.cut_off)
SshKey = Annotated[str, StringConstraints(min_length=1, max_length=16384)]


class ReinstallBody(Params):
    image: str | None = Field(default=None, max_length=64, description="Default: the OS the VPS was ordered with")
    ssh_keys: list[SshKey] = Field(min_length=1, max_length=100,
                                   description="New root credentials: OpenSSH public keys")
    confirm_data_loss: bool = Field(description="Must be true: the VPS's disk is erased")
    keep_old_disk: bool = Field(default=False, description="Keep the old root disk as a backup")


class Previous(Plan):
    """What the VPS had before: where a failed switch goes back to."""

    generation: int
    image: str
    ssh_authorized_keys: list[str]
    ssh_host_keys: list[dict[str, str]]


class RootDiskPlan(Plan):
    image: str
    ssh_keys: list[str]
    generation: int
    previous: Previous


class RootDiskState(BaseModel):
    """What a root-disk switch remembers in its job as it goes (and a workflow may set before)."""

    new_host_key: dict[str, str] | None = None  # public half only
    was_powered: bool | None = None
    keep_old_disk: bool = False
    transfer: bool = False  # R6.2-transfer: the old disk goes to the new system (the compromise workflow)


def check_keys(settings: Settings, ssh_keys: list[str]) -> list[str]:
    keys = [normalise_authorized_key(k) for k in ssh_keys]
    if not keys:
        raise InvalidRequest("new root credentials are needed: give ssh_keys (R6.1-root)")
    if len(keys) > settings.limits.max_ssh_keys:
        raise InvalidRequest(f"at most {settings.limits.max_ssh_keys} SSH keys")
    return keys


def previous_of(vps: Vps) -> Previous:
    return Previous(generation=vps.root_generation, image=vps.image, ssh_authorized_keys=vps.ssh_authorized_keys,
                    ssh_host_keys=vps.ssh_host_keys)


def _plan(ctx: Context) -> RootDiskPlan:
    return ctx.plan(RootDiskPlan)


def _state(ctx: Context) -> RootDiskState:
    return ctx.args(RootDiskState)


def upload_image(ctx: Context) -> str:
    return provision.ensure_image(ctx, _plan(ctx).image)


def create_new_root(ctx: Context) -> str:
    vps, plan = ctx.vps(), _plan(ctx)
    return provision.create_root(ctx, vps.root_volume_for(plan.generation), plan.image, vps.disk_gib)


def create_new_seed(ctx: Context) -> str:
    vps, plan = ctx.vps(), _plan(ctx)
    key = provision.write_seed(ctx, vps.seed_volume_for(plan.generation), f"{vps.id}-{plan.generation}",
                               plan.ssh_keys)
    ctx.remember(new_host_key=key)
    return f"seed with new host key {key['fingerprint']}"


def stop_old_system(ctx: Context) -> str:
    if ctx.vps().root_generation == _plan(ctx).generation:
        return "already switched"
    return power_off(ctx, force=False)


def switch_disk(ctx: Context) -> str:
    vps, plan, state = ctx.vps(), _plan(ctx), _state(ctx)
    assert state.new_host_key is not None
    ctx.update_vps(root_generation=plan.generation, image=plan.image, ssh_authorized_keys=plan.ssh_keys,
                   ssh_host_keys=[state.new_host_key], addresses=vps.addresses if vps.cut_off else [])
    ctx.define()
    return f"root disk is now generation {plan.generation} ({plan.image})"


def start_new_system(ctx: Context) -> str:
    ctx.driver.start_domain(ctx.vps().id)
    return "running"


def retire_old_disk(ctx: Context) -> str:
    vps, host, plan = ctx.vps(), ctx.host(), _plan(ctx)
    old = plan.previous.generation
    old_root, old_seed = vps.root_volume_for(old), vps.seed_volume_for(old)
    ctx.driver.delete_volume(host.pool_name, old_seed)
    if _state(ctx).keep_old_disk:
        if ctx.driver.volume_path(host.pool_name, old_root) is None:
            return "old disk already gone"
        with session_scope(ctx.engine) as session:
            session.add(Backup(id=f"{ctx.job.id}", vps_id=vps.id, kind="before_reinstall", pool=host.pool_name,
                               volume=old_root, size_bytes=vps.disk_gib << 30, consistency="stopped",
                               note=f"root disk before the reinstall of job {ctx.job.id}"))
        return f"old disk kept as backup {ctx.job.id}"
    ctx.driver.delete_volume(host.pool_name, old_root, wipe=ctx.settings.lifecycle.wipe_volumes_on_delete)
    return f"old disk {old_root} discarded"


P = TypeVar("P", bound=Params)


class SwitchesRootDisk(Operation[P]):
    """Lays a new root-disk generation beside the old one and switches to it; goes back on failure."""

    allowed_from = frozenset({VpsStatus.running, VpsStatus.stopped, VpsStatus.cut_off})

    @classmethod
    def begin(cls, ctx: Context) -> None:
        if _state(ctx).was_powered is None:
            ctx.remember(was_powered=ctx.vps().status in POWERED)

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=running_status(ctx), error=None)
        provision.send_delivery_report(ctx)  # R6.2-reinstall: the new credentials' report

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        """Back to the old disk and credentials; the new generation's volumes are removed."""
        if not ctx.planned:  # refused before anything was planned
            return
        vps, host, plan = ctx.vps(), ctx.host(), _plan(ctx)
        previous = plan.previous
        if vps.root_generation == plan.generation:
            ctx.driver.destroy_domain(vps.id)
            ctx.update_vps(root_generation=previous.generation, image=previous.image,
                           ssh_authorized_keys=previous.ssh_authorized_keys, ssh_host_keys=previous.ssh_host_keys)
            ctx.define()
        ctx.driver.delete_volume(host.pool_name, vps.root_volume_for(plan.generation))
        ctx.driver.delete_volume(host.pool_name, vps.seed_volume_for(plan.generation))
        if _state(ctx).was_powered:
            ctx.driver.start_domain(vps.id)
            ctx.update_vps(status=running_status(ctx), error=f"{ctx.job.kind} failed: {error}"[:2000])
        else:
            ctx.update_vps(status=VpsStatus.stopped, error=f"{ctx.job.kind} failed: {error}"[:2000])


@register
class ReinstallVps(SwitchesRootDisk[ReinstallBody]):
    """R6.2-reinstall: a new root disk from the ordered OS (or `image`), new host keys, new root keys.
    Refused without `confirm_data_loss: true`.  The old disk goes only once the new system is up."""

    kind = "reinstall"
    route = "/reinstall"
    params = ReinstallBody
    steps: ClassVar[tuple[Step, ...]] = (
        Step("upload_image", upload_image),
        Step("create_new_root", create_new_root),
        Step("create_new_seed", create_new_seed),
        Step("stop_old_system", stop_old_system),
        Step("switch_disk", switch_disk),
        Step("start_new_system", start_new_system),
        Step("wait_for_address", provision.wait_for_address),
        Step("filter_address", network.filter_address),
        Step("verify_ssh", provision.verify_ssh),
        Step("retire_old_disk", retire_old_disk),
    )

    @classmethod
    def check(cls, req: Request, params: ReinstallBody) -> RootDiskPlan:
        if params.confirm_data_loss is not True:
            raise InvalidRequest("a reinstall erases the VPS's disk; send confirm_data_loss: true")
        vps = req.vps
        assert vps is not None
        image = params.image or vps.image  # R6.2-reinstall: the OS of the order
        record = req.session.get(Image, image)
        if record is None:
            raise InvalidRequest(f"unknown image {image!r}")
        if vps.disk_gib < record.min_disk_gib or vps.memory_mib < record.min_memory_mib:
            raise InvalidRequest(f"image {image} needs {record.min_disk_gib} GiB of disk and "
                                 f"{record.min_memory_mib} MiB of memory")
        return RootDiskPlan(image=image, ssh_keys=check_keys(req.settings, params.ssh_keys),
                            generation=vps.root_generation + 1, previous=previous_of(vps))


