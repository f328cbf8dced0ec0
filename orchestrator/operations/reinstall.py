"""Reinstall a VPS (R6.2-reinstall): a new root disk from the image the VPS was ordered with (or
another from the catalog), new SSH host keys, new root credentials (the customer's new keys).

Needs ``confirm_data_loss: true``. The new disk and seed are a new *generation* laid beside the
old ones; the old root disk is discarded only once the new system answers SSH with its new host
key, or kept as a backup when asked (``keep_old_disk``). If the new system does not come up, the
VPS goes back to its old disk. A cut-off VPS stays cut off (R5.5-cutoff): the definition is
always built from the record.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlmodel import Session

from orchestrator.auth import Principal
from orchestrator.db import session_scope
from orchestrator.errors import InvalidRequest
from orchestrator.keys import normalise_authorized_key
from orchestrator.models import Backup, Image, Vps, VpsStatus
from orchestrator.operations import provision
from orchestrator.operations.base import Context, Operation, Step, register
from orchestrator.operations.power import power_off, running_status
from orchestrator.settings import Settings

POWERED = (VpsStatus.running, VpsStatus.cut_off)


def request_params(session: Session, settings: Settings, vps: Vps, body: dict[str, Any]) -> dict[str, Any]:
    ReinstallVps.check_status(vps)
    if body.get("confirm_data_loss") is not True:
        raise InvalidRequest("a reinstall erases the VPS's disk; send confirm_data_loss: true")
    # R6.2-notice: a VPS reported hacked waits three jours ouvrés after the notice, or the
    # client's recorded written agreement.
    from orchestrator.compromise import check_reinstall_allowed

    check_reinstall_allowed(session, settings, vps)
    return build_params(session, settings, vps, body.get("image") or vps.image, body.get("ssh_keys") or [],
                        keep_old_disk=bool(body.get("keep_old_disk", False)))


def check_keys(settings: Settings, ssh_keys: list[str]) -> list[str]:
    keys = [normalise_authorized_key(k) for k in ssh_keys]
    if not keys:
        raise InvalidRequest("new root credentials are needed: give ssh_keys (R6.1-root)")
    if len(keys) > settings.max_ssh_keys:
        raise InvalidRequest(f"at most {settings.max_ssh_keys} SSH keys")
    return keys


def build_params(session: Session, settings: Settings, vps: Vps, image: str, ssh_keys: list[str], *,
                 keep_old_disk: bool = False) -> dict[str, Any]:
    """The job's parameters; ``image`` defaults to the OS of the order (R6.2-reinstall)."""
    record = session.get(Image, image)
    if record is None:
        raise InvalidRequest(f"unknown image {image!r}")
    if vps.disk_gib < record.min_disk_gib or vps.memory_mib < record.min_memory_mib:
        raise InvalidRequest(f"image {image} needs {record.min_disk_gib} GiB of disk and "
                             f"{record.min_memory_mib} MiB of memory")
    return {
        "image": image,
        "ssh_keys": check_keys(settings, ssh_keys),
        "keep_old_disk": keep_old_disk,
        "generation": vps.root_generation + 1,
        "previous": {"generation": vps.root_generation, "image": vps.image,
                     "ssh_authorized_keys": vps.ssh_authorized_keys, "ssh_host_keys": vps.ssh_host_keys},
    }


def _gen(ctx: Context) -> int:
    return int(ctx.params["generation"])


def upload_image(ctx: Context) -> str:
    return provision.ensure_image(ctx, ctx.params["image"])


def create_new_root(ctx: Context) -> str:
    vps = ctx.vps()
    return provision.create_root(ctx, vps.root_volume_for(_gen(ctx)), ctx.params["image"], vps.disk_gib)


def create_new_seed(ctx: Context) -> str:
    vps = ctx.vps()
    key = provision.write_seed(ctx, vps.seed_volume_for(_gen(ctx)), f"{vps.id}-{_gen(ctx)}", ctx.params["ssh_keys"])
    ctx.update_params(new_host_key=key)  # public half only
    return f"seed with new host key {key['fingerprint']}"


def stop_old_system(ctx: Context) -> str:
    if ctx.vps().root_generation == _gen(ctx):
        return "already switched"
    return power_off(ctx, force=False)


def switch_disk(ctx: Context) -> str:
    vps = ctx.vps()
    ctx.update_vps(root_generation=_gen(ctx), image=ctx.params["image"], ssh_authorized_keys=ctx.params["ssh_keys"],
                   ssh_host_keys=[ctx.params["new_host_key"]], addresses=vps.addresses if vps.cut_off else [])
    ctx.define()
    return f"root disk is now generation {_gen(ctx)} ({ctx.params['image']})"


def start_new_system(ctx: Context) -> str:
    ctx.driver.start_domain(ctx.vps().id)
    return "running"


def retire_old_disk(ctx: Context) -> str:
    vps, host = ctx.vps(), ctx.host()
    old = int(ctx.params["previous"]["generation"])
    old_root, old_seed = vps.root_volume_for(old), vps.seed_volume_for(old)
    ctx.driver.delete_volume(host.pool_name, old_seed)
    if ctx.params["keep_old_disk"]:
        if ctx.driver.volume_path(host.pool_name, old_root) is None:
            return "old disk already gone"
        with session_scope(ctx.engine) as session:
            session.add(Backup(id=f"{ctx.job.id}", vps_id=vps.id, kind="before_reinstall", pool=host.pool_name,
                               volume=old_root, size_bytes=vps.disk_gib << 30,
                               note=f"root disk before the reinstall of job {ctx.job.id}"))
        return f"old disk kept as backup {ctx.job.id}"
    ctx.driver.delete_volume(host.pool_name, old_root, wipe=ctx.settings.wipe_volumes_on_delete)
    return f"old disk {old_root} discarded"


@register
class ReinstallVps(Operation):
    kind = "reinstall"
    allowed_from = frozenset({VpsStatus.running, VpsStatus.stopped, VpsStatus.cut_off})
    steps: ClassVar[tuple[Step, ...]] = (
        Step("upload_image", upload_image),
        Step("create_new_root", create_new_root),
        Step("create_new_seed", create_new_seed),
        Step("stop_old_system", stop_old_system),
        Step("switch_disk", switch_disk),
        Step("start_new_system", start_new_system),
        Step("wait_for_address", provision.wait_for_address),
        Step("verify_ssh", provision.verify_ssh),
        Step("retire_old_disk", retire_old_disk),
    )

    @classmethod
    def check_request(cls, principal: Principal, vps: Vps, params: dict[str, Any]) -> None:
        if "generation" not in params:
            raise InvalidRequest("a reinstall is requested through reinstall.request_params")

    @classmethod
    def begin(cls, ctx: Context) -> None:
        if ctx.params.get("compromise_id") and not ctx.job.steps_done:
            # R6.2-notice, R6.2-backup, R6.2-transfer: the deadline job of a compromise waits for
            # the notice's deadline and for the paid services the client ordered.
            from orchestrator.compromise import reinstall_gate

            reinstall_gate(ctx)
        if "was_powered" not in ctx.params:
            ctx.update_params(was_powered=ctx.vps().status in POWERED)

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=running_status(ctx), error=None)
        provision.send_delivery_report(ctx)  # R6.2-reinstall: the new credentials' report
        if ctx.params.get("compromise_id"):
            from orchestrator.compromise import after_reinstall

            after_reinstall(ctx)

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        """Back to the old disk and credentials; the new generation's volumes are removed."""
        vps, host = ctx.vps(), ctx.host()
        previous = ctx.params["previous"]
        new_gen = _gen(ctx)
        if vps.root_generation == new_gen:
            ctx.driver.destroy_domain(vps.id)
            ctx.update_vps(root_generation=previous["generation"], image=previous["image"],
                           ssh_authorized_keys=previous["ssh_authorized_keys"],
                           ssh_host_keys=previous["ssh_host_keys"])
            ctx.define()
        ctx.driver.delete_volume(host.pool_name, vps.root_volume_for(new_gen))
        ctx.driver.delete_volume(host.pool_name, vps.seed_volume_for(new_gen))
        if ctx.params.get("was_powered"):
            ctx.driver.start_domain(vps.id)
            ctx.update_vps(status=running_status(ctx), error=f"reinstall failed: {error}"[:2000])
        else:
            ctx.update_vps(status=VpsStatus.stopped, error=f"reinstall failed: {error}"[:2000])
