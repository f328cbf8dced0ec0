"""Applying the record's network state to a domain: the link (up, or down while cut off) and the
interface's filter (libvirt's clean-traffic, with the mail block when R6.4-spam applies, and the
one address the guest may use)."""

from __future__ import annotations

from orchestrator.compute.designer import interface_config
from orchestrator.engine.context import Context
from orchestrator.hypervisor import DomainState, FilterRef


def apply_interface(ctx: Context) -> str:
    """Definition first (so a restart cannot undo it, and the host's filters and the pinned
    address are there: ``Context.define``), then the running domain."""
    follow_lease(ctx)
    ctx.define()
    vps, host = ctx.vps(), ctx.host()
    interface = interface_config(vps, host, ctx.settings)
    state = (f"link {'up' if interface.link_up else 'down'}, mail {'blocked' if vps.mail_blocked else 'open'}, "
             f"{describe(interface.filter)}")
    info = ctx.driver.domain(vps.id)
    if info is not None and info.state != DomainState.shutoff:
        ctx.driver.set_link_live(vps.id, interface)
        return f"{state} (live and persistent)"
    return f"{state} (persistent; the domain is off)"


def follow_lease(ctx: Context) -> None:
    """The address the filter allows is the one the guest holds: a running guest's DHCP lease,
    when it has one, is recorded first.  A VPS from before addresses were pinned may hold another
    than the one first recorded (the lease expired while it was off), and a filter on the wrong
    one would cut it off."""
    vps = ctx.vps()
    if vps.cut_off:  # no DHCP through a link that is down: the recorded address stays
        return
    lease = ctx.driver.interface_addresses(vps.id)
    if lease and lease != vps.addresses:
        ctx.update_vps(addresses=lease)


def filter_address(ctx: Context) -> str:
    """Once the lease is recorded, the guest may use that address only: pinned in the network's
    DHCP server and given to its filter (until then libvirt learnt it from the DHCP answer)."""
    return apply_interface(ctx)


def describe(ref: FilterRef | None) -> str:
    """One line for the VPS's events: the filter and the address it allows."""
    if ref is None:
        return "no filter"
    addresses = sorted(value for name, value in ref.parameters if name == "IP")
    allowed = f"address {', '.join(addresses)}" if addresses else "address learnt from the DHCP answer"
    return f"filter {ref.filter} ({allowed})"
