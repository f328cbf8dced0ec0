"""Applying the record's network state (link up or down, mail filter) to a domain."""

from __future__ import annotations

from orchestrator.compute.designer import interface_config
from orchestrator.engine.context import Context
from orchestrator.hypervisor import DomainState


def apply_interface(ctx: Context) -> str:
    """Definition first (so a restart cannot undo it), then the running domain."""
    ctx.define()
    vps, host = ctx.vps(), ctx.host()
    interface = interface_config(vps, host)
    state = f"link {'up' if interface.link_up else 'down'}, mail {'blocked' if interface.filter else 'open'}"
    info = ctx.driver.domain(vps.id)
    if info is not None and info.state != DomainState.shutoff:
        ctx.driver.set_link_live(vps.id, interface)
        return f"{state} (live and persistent)"
    return f"{state} (persistent; the domain is off)"
