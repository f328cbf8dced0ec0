"""Realistic contexts for every email template, and small helpers shared by the notify tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from orchestrator.core.db import make_engine
from orchestrator.core.models import Customer
from orchestrator.core.settings import Settings

VPS_ID = "3f2c9a57-1b1e-4c5e-9a0e-0d3b8f6a2c11"
FINGERPRINT = "SHA256:q2rGk8v5mJ1x0dC3oE7yH9tP4sW6uN2bV8zL1aK5fQ0"
FINGERPRINT_RSA = "SHA256:Zk3d9TqX0bW2nY6cR1vF8eJ4hL7mP5sA3gU0iO9kE2w"


def contexts() -> dict[str, dict[str, Any]]:
    """One realistic context per template (fresh lists each call)."""
    return {
        "delivery_report": {
            "vps_name": "web-prod-1",
            "vps_id": VPS_ID,
            "image": "debian-12",
            "os": "Debian 12 (bookworm)",
            "vcpus": 2,
            "memory_mib": 4096,
            "disk_gib": 40,
            "addresses": ["192.0.2.45", "2001:db8:150::45"],
            "host_keys": [
                {"type": "ssh-ed25519", "fingerprint": FINGERPRINT},
                {"type": "ssh-rsa", "fingerprint": FINGERPRINT_RSA},
            ],
            "delivered_at": datetime(2026, 5, 13, 7, 58, 12, tzinfo=UTC),
            "site": "Marseille",
        },
        "compromise_notice": {
            "vps_name": "web-prod-1",
            "vps_id": VPS_ID,
            "os": "Debian 12 (bookworm)",
            "details": ("Outbound SSH brute-force towards 2 400 addresses;\n"
                        "unknown binary /tmp/.x/kswapd0 running as root."),
            "detected_at": datetime(2026, 5, 13, 7, 30, tzinfo=UTC),
            "cut_off": True,
            "backup_price_eur": "49.00",
            "transfer_price_eur": 120,
        },
        "cutoff_notice": {
            "vps_name": "web-prod-1",
            "vps_id": VPS_ID,
            "reason": "security_update_missing",
            "cut_off_at": datetime(2026, 5, 13, 8, 5, tzinfo=UTC),
            "details": "OpenSSH update DSA-5732-1, requested on 2 May 2026.",
        },
        "reconnect_notice": {
            "vps_name": "web-prod-1",
            "vps_id": VPS_ID,
            "reconnected_at": datetime(2026, 5, 15, 13, 20, tzinfo=UTC),
            "corrective_measures": "OpenSSH updated to 1:9.2p1-2+deb12u3, checked by support.",
        },
        "payment_formal_notice": {
            "invoice_ref": "F-2026-00042",
            "amount_due_eur": "1234.5",
            "due_date": date(2026, 4, 1),
            "vps_names": ["web-prod-1", "db-prod-1"],
            "rejected_payment": True,
            "service_interrupted": True,
            "incident_fee_eur": 35,
        },
        "non_renewal_ack": {
            "subscription_id": "8d1e7c3a-5b2f-4e9a-b0c4-1f6d2a9e3b75",
            "vps_name": "web-prod-1",
            "received_at": datetime(2026, 11, 14, 9, 30, tzinfo=UTC),
            "channel": "registered_letter",
            "ends_on": date(2027, 1, 15),
        },
        "reversibility_ack": {
            "subscription_id": "8d1e7c3a-5b2f-4e9a-b0c4-1f6d2a9e3b75",
            "received_at": datetime(2026, 5, 13, 8, 0, tzinfo=UTC),
            "effective_at": datetime(2026, 7, 13, 8, 0, tzinfo=UTC),
            "exported_vps": ["web-prod-1", "db-prod-1"],
        },
        "termination_notice": {
            "subscription_id": "8d1e7c3a-5b2f-4e9a-b0c4-1f6d2a9e3b75",
            "vps_name": "web-prod-1",
            "reason": "nonpayment",
            "terminated_at": datetime(2026, 5, 28, 8, 0, tzinfo=UTC),
            "data_erased": True,
        },
        "interruption_notice": {
            "vps_name": "web-prod-1",
            "vps_id": VPS_ID,
            "starts_at": datetime(2026, 5, 20, 0, 0, tzinfo=UTC),
            "ends_at": datetime(2026, 5, 20, 3, 30, tzinfo=UTC),
            "reason": "replacement of the host's storage controller",
        },
        "incident_notice": {
            "vps_name": "web-prod-1",
            "vps_id": VPS_ID,
            "malfunction": "vps_down",
            "opened_at": datetime(2026, 5, 15, 8, 0, tzinfo=UTC),
            "description": "The server stopped answering; the host reports its domain shut off.",
            "fix_deadline": datetime(2026, 5, 20, 8, 0, tzinfo=UTC),
        },
        "termination_right_notice": {
            "vps_name": "web-prod-1",
            "vps_id": VPS_ID,
            "malfunction": "network",
            "opened_at": datetime(2026, 5, 15, 8, 0, tzinfo=UTC),
            "fix_deadline": datetime(2026, 5, 20, 8, 0, tzinfo=UTC),
            "description": "Packet loss on the host's uplink.",
        },
        "restored_elsewhere": {
            "vps_name": "web-prod-1",
            "vps_id": VPS_ID,
            "backup_taken_at": datetime(2026, 5, 19, 23, 30, tzinfo=UTC),
            "site": "Paris",
            "data_disks": ["vdb"],
            "host_key_fingerprints": ["SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"],
        },
        "maintenance_notice": {
            "vps_name": "web-prod-1",
            "vps_id": VPS_ID,
            "starts_at": datetime(2026, 5, 20, 2, 0, tzinfo=UTC),
            "duration_minutes": 45,
            "description": "Hypervisor kernel security update.",
        },
        "order_form": {
            "number": "BC2026-000007",
            "order_id": "0b6f3f0e-7d7a-4c1b-8f43-2a9f1c4e5d60",
            "vps_name": "web-prod-1",
            "vps_id": VPS_ID,
            "current": {"vcpus": 2, "memory_mib": 4096, "disk_gib": 40},
            "new": {"vcpus": 4, "memory_mib": 8192, "disk_gib": 80},
            "rent_ht": "39.90",
            "fee_ht": "15.00",
            "billing_period": "monthly",
            "note": "Applied live, no reboot.",
            "request_note": "Black Friday traffic.",
        },
        "change_order_refused": {
            "vps_name": "web-prod-1",
            "vps_id": VPS_ID,
            "current": {"vcpus": 2, "memory_mib": 4096, "disk_gib": 40},
            "new": {"vcpus": 32, "memory_mib": 262144, "disk_gib": 4000},
            "reason": "The host cannot hold that much memory; we suggest 16 GiB.",
        },
    }


def engine_for(tmp_path: Path, **overrides: Any) -> tuple[Engine, Settings]:
    values: dict[str, Any] = {"state_dir": tmp_path, "outbox_retry_seconds": 60.0,
                              "company_name": "Hébergement Provençal"}
    values.update(overrides)
    settings = Settings(**values)
    return make_engine(settings), settings


def add_customer(engine: Engine, name: str = "acme", email: str = "ops@acme.example",
                 language: str = "fr") -> int:
    with Session(engine) as session:
        customer = Customer(name=name, email=email, language=language)
        session.add(customer)
        session.commit()
        assert customer.id is not None
        return customer.id
