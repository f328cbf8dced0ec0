"""Steps shared by the operations that lay a system onto a VPS (create, reinstall): the image on
the host, a root disk from it, a NoCloud seed with fresh host keys, an address, an SSH answer."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from orchestrator.adapters.ssh import matches_host_key
from orchestrator.compute.images import volume_name
from orchestrator.compute.keys import generate_host_key
from orchestrator.compute.seed import Seed
from orchestrator.core.clock import utcnow
from orchestrator.core.db import locked, session_scope
from orchestrator.core.errors import HypervisorError, OperationFailed, StorageFull, TransientError
from orchestrator.core.models import Host, HostImage, Image, Job, Outbox
from orchestrator.engine import jobs
from orchestrator.engine.context import Context
from orchestrator.engine.operation import wait_until
from orchestrator.hypervisor import VolumeConfig

GIB = 1 << 30
READY, UPLOADING = "ready", "uploading"


def _image(ctx: Context, name: str) -> Image:
    with session_scope(ctx.engine) as session:
        image = session.get(Image, name)
        if image is None:
            raise OperationFailed(f"image {name} is no longer registered")
        session.expunge(image)
        return image


def _record(ctx: Context, image: Image, host_id: int | None) -> HostImage | None:
    with session_scope(ctx.engine) as session:
        record = session.get(HostImage, (host_id, image.name, image.sha256))
        if record is not None:
            session.expunge(record)
        return record


def _uploaded(ctx: Context, image: Image, host_id: int | None) -> HostImage | None:
    """The image's base volume on the host, when its upload is complete and checked."""
    record = _record(ctx, image, host_id)
    return record if record is not None and record.state == READY else None


def _sha256(chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _take_upload(ctx: Context, image: Image, host: Host, name: str) -> bool:
    """Whether this job is the one to upload the image to the host now: nobody is, or the job that
    was is over (failed, cancelled) or is this one (resumed after a crash).  One transaction,
    under a row lock: of several jobs asking at once, one takes it."""
    with session_scope(ctx.engine) as session:
        record = session.get(HostImage, (host.id, image.name, image.sha256))
        if record is not None:
            record = locked(session, record)
            uploader = session.get(Job, record.job_id) if record.job_id else None
            if (record.state == UPLOADING and record.job_id != ctx.job.id and uploader is not None
                    and uploader.status in jobs.ACTIVE):
                return False
            record.state, record.job_id, record.path = UPLOADING, ctx.job.id, ""
            session.add(record)
            return True
        try:
            with session.begin_nested():
                session.add(HostImage(host_id=host.id or 0, image_name=image.name, sha256=image.sha256,
                                      volume=name, path="", state=UPLOADING, job_id=ctx.job.id))
        except IntegrityError:  # another job inserted it first
            return False
        return True


def ensure_image(ctx: Context, image_name: str, host: Host | None = None) -> str:
    """The image's base volume on the VPS's host (or ``host``), recorded ready only once fully
    uploaded and read back with the image's sha256.  Jobs asking at once for the same image on
    the same host upload it once: the others wait for that upload (their slots go to other jobs
    meanwhile), and take it over if the job that was uploading ends without it."""
    host = host or ctx.host()
    driver = ctx.drivers.for_host(host)
    image = _image(ctx, image_name)
    name = volume_name(image)
    while True:
        done = _uploaded(ctx, image, host.id)
        if done is not None and driver.volume_path(host.pool_name, name) == done.path:
            return f"{name} already on the host"
        if _take_upload(ctx, image, host, name):
            break

        def settled() -> str | None:
            record = _record(ctx, image, host.id)
            if record is None or record.state == READY:
                return "ready"
            with session_scope(ctx.engine) as session:
                uploader = session.get(Job, record.job_id) if record.job_id else None
                return None if uploader is not None and uploader.status in jobs.ACTIVE else "abandoned"

        wait_until(ctx, ctx.settings.lifecycle.image_upload_timeout_seconds,
                   f"the upload of {image.name} by another job", settled)
    # Ours.  A volume already there (an upload this database did not record: another
    # installation's, or one cut short) is kept only if it is the image, byte for byte.
    path = driver.volume_path(host.pool_name, name)
    if path and _sha256(driver.download_volume(host.pool_name, name)) == image.sha256:
        how = "found on the host"
    else:
        try:
            driver.delete_volume(host.pool_name, name)
            path = driver.upload_volume(
                host.pool_name,
                VolumeConfig(name=name, capacity_bytes=image.virtual_size_bytes or image.size_bytes),
                Path(image.path),
                sha256=image.sha256,  # read back from the host and compared: a damaged copy is sent again
            )
        except StorageFull:
            raise  # no room for the image: a clear failure, not worth trying again at once
        except HypervisorError as exc:
            # Another installation sharing the host may be writing the same volume right now
            # ("still being allocated"): the next attempt finds it complete, or uploads again.
            raise TransientError(f"uploading {name}: {exc}") from exc
        how = f"uploaded {image.size_bytes} bytes as {name}"
    with session_scope(ctx.engine) as session:
        record = session.get(HostImage, (host.id, image.name, image.sha256))
        if record is None or record.job_id != ctx.job.id:
            raise TransientError(f"the upload of {image.name} was taken over by another job")
        record.state, record.job_id, record.path, record.uploaded_at = READY, None, path, utcnow()
        session.add(record)
    return f"{how}, sha256 checked"


def create_root(ctx: Context, volume: str, image_name: str, disk_gib: int) -> str:
    host = ctx.host()
    if ctx.driver.volume_path(host.pool_name, volume):
        return f"{volume} already exists"
    image = _image(ctx, image_name)
    base = _uploaded(ctx, image, host.id)
    if base is None:
        raise OperationFailed(f"image {image_name} is not on host {host.name}")
    ctx.driver.create_volume(
        host.pool_name, VolumeConfig(name=volume, capacity_bytes=disk_gib * GIB, backing_path=base.path)
    )
    return f"{disk_gib} GiB qcow2 overlay of {image_name}"


def write_seed(ctx: Context, volume: str, instance_id: str, authorized_keys: list[str]) -> dict[str, str]:
    """A seed with a host key generated now; returns the key's public half and fingerprint.

    Run again, it makes a new key: the private half exists only in the seed, so after a crash we
    make both anew rather than guess which one the host holds."""
    vps, host = ctx.vps(), ctx.host()
    key = generate_host_key()
    content = Seed(instance_id=instance_id, hostname=vps.name, authorized_keys=tuple(authorized_keys),
                   host_key=key, mac=vps.mac).to_iso()
    ctx.driver.delete_volume(host.pool_name, volume)
    ctx.driver.create_volume(host.pool_name, VolumeConfig(name=volume, capacity_bytes=len(content), format="raw"),
                             content)
    return {"type": key.key_type, "public_key": key.public_openssh, "fingerprint": key.fingerprint}


def wait_for_address(ctx: Context) -> str:
    vps = ctx.vps()
    if vps.cut_off:
        # No DHCP through a link that is down (R5.5-cutoff); the MAC, hence the lease, is kept.
        return "skipped: the VPS's network is cut off"

    def lease() -> str | None:
        addresses = ctx.driver.interface_addresses(vps.id)
        if addresses:
            ctx.update_vps(addresses=addresses)
            return ", ".join(addresses)
        return None

    return wait_until(ctx, ctx.settings.lifecycle.address_timeout_seconds, "a DHCP lease", lease)


def verify_ssh(ctx: Context) -> str:
    """The guest answers SSH with the host key generated for it (handshake only, no login:
    R2-no-guest-management)."""
    if not ctx.settings.lifecycle.verify_guest_ssh:
        return "skipped (VPSCTL_VERIFY_GUEST_SSH=false)"
    vps = ctx.vps()
    expected = vps.ssh_host_keys[0]["public_key"]
    if not vps.addresses:
        raise OperationFailed("the VPS has no address to check")
    address = next((a for a in vps.addresses if ":" not in a), vps.addresses[0])
    if vps.cut_off:
        return "skipped: the VPS's network is cut off (R5.5-cutoff)"

    def answer() -> str | None:
        try:
            if matches_host_key(address, expected, proxy_command=ctx.guest_proxy_command, timeout=5.0):
                return f"{address}:22 presents {vps.ssh_host_keys[0]['fingerprint']}"
        except Exception:  # not up yet: refused, reset, timed out
            return None
        raise OperationFailed(f"{address}:22 presents a host key that is not the one generated for it")

    return wait_until(ctx, ctx.settings.lifecycle.ssh_ready_timeout_seconds, "SSH answering", answer)


def notify_once(ctx: Context, template: str, context: dict[str, Any]) -> None:
    """Queue ``template`` to the VPS's customer once per job (a job resumed after a crash does not
    send it twice); the outbox sends it, retrying while SMTP is down."""
    from orchestrator.notify import enqueue

    vps = ctx.vps()
    with session_scope(ctx.engine) as session:
        already = session.exec(
            select(Outbox).where(Outbox.job_id == ctx.job.id, Outbox.template == template)
        ).first()
        if already is None:
            enqueue(session, vps.customer_id, template, context, vps_id=vps.id, job_id=ctx.job.id,
                    settings=ctx.settings)


def send_delivery_report(ctx: Context) -> None:
    """R9-delivery: the procès-verbal de mise à disposition (what, when, where, host keys)."""
    from orchestrator.notify import delivery_context

    vps, host = ctx.vps(), ctx.host()
    with session_scope(ctx.engine) as session:
        image = session.get(Image, vps.image)
        context = delivery_context(vps, image, site=host.site)
    notify_once(ctx, "delivery_report", context)
