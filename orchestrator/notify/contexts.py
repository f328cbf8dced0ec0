"""Contexts built from the database records, for the templates that describe a VPS."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.core.clock import utcnow
from orchestrator.core.models import Image, Vps


def delivery_context(vps: Vps, image: Image | None = None, *, delivered_at: datetime | None = None,
                     site: str = "") -> dict[str, Any]:
    """R9-delivery: the context of ``delivery_report`` for a delivered VPS (what, when, where, and
    the SSH host key fingerprints; public halves only ever reach the email)."""
    return {
        "vps_name": vps.name,
        "vps_id": vps.id,
        "image": vps.image,
        "os": image.os if image is not None else vps.image,
        "vcpus": vps.vcpus,
        "memory_mib": vps.memory_mib,
        "disk_gib": vps.disk_gib,
        "addresses": list(vps.addresses),
        "host_keys": [{"type": key.get("type", ""), "fingerprint": key["fingerprint"]} for key in vps.ssh_host_keys],
        "delivered_at": delivered_at or utcnow(),
        "site": site,
    }
