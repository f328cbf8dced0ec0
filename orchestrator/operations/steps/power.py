"""Steps shared by the operations that power a domain on and off."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from orchestrator.core.clock import utcnow
from orchestrator.core.errors import HypervisorError, OperationFailed
from orchestrator.core.models import VpsStatus
from orchestrator.engine.context import Context
from orchestrator.engine.operation import wait_until
from orchestrator.hypervisor import DomainState

log = logging.getLogger(__name__)
SHUTDOWN = "a clean shutdown"
PRESSED = "power_button_pressed_at"  # job parameter: when the power button was last pressed


def running_status(ctx: Context) -> VpsStatus:
    """What a powered-on VPS is called: cut_off while its network is cut (R5.5-cutoff)."""
    return VpsStatus.cut_off if ctx.vps().cut_off else VpsStatus.running


def power_off(ctx: Context, force: bool) -> str:
    """Graceful (ACPI power button, wait) then forced; a domain already off is fine."""
    vps = ctx.vps()
    step = ctx.job.step or SHUTDOWN
    info = ctx.driver.domain(vps.id)
    if info is None or info.state == DomainState.shutoff:
        if ctx.waiting_since_before(step):  # it went off while the job had given its slot back
            ctx.end_wait(step)
            return "shut down by the guest"
        return "already off"
    if not force:
        # Pressed when the wait begins, not each time the job comes back to look (the step runs
        # again then); and again every shutdown_retry_seconds: a guest still booting when it was
        # pressed did not hear it.
        if not ctx.waiting_since_before(step):
            press(ctx)

        def off() -> str | None:
            current = ctx.driver.domain(vps.id)
            if current is None or current.state == DomainState.shutoff:
                return "shut down by the guest"
            last = ctx.params.get(PRESSED)
            if last is None or utcnow() - datetime.fromisoformat(last) >= timedelta(
                    seconds=ctx.settings.lifecycle.shutdown_retry_seconds):
                try:
                    press(ctx)
                except HypervisorError as exc:
                    # The guest went off (or is going) between the look and the press: the wait
                    # goes on, and the next look tells; a press refused is not a failed stop.
                    log.info("VPS %s: the power button pressed again was refused (%s)", vps.id, exc)
                    ctx.remember(**{PRESSED: utcnow().isoformat()})
            return None

        with contextlib.suppress(OperationFailed):  # timed out: fall through to a forced stop
            return wait_until(ctx, ctx.settings.lifecycle.stop_timeout_seconds, SHUTDOWN, off)
    ctx.driver.destroy_domain(vps.id)
    return "forced off" if force else f"forced off after {ctx.settings.lifecycle.stop_timeout_seconds:.0f} s"


def press(ctx: Context) -> None:
    """The power button; the instant is kept in the job (a step that gave its slot back reads it)."""
    vps_id = ctx.vps().id
    ctx.driver.resume_domain(vps_id)  # a paused guest cannot hear the power button
    ctx.driver.shutdown_domain(vps_id)
    ctx.remember(**{PRESSED: utcnow().isoformat()})


def power_on(ctx: Context) -> str:
    ctx.define()
    ctx.driver.start_domain(ctx.vps().id)
    return "running"
