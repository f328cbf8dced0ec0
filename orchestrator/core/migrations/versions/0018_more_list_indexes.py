"""Indexes for every other list read a page at a time (api/pages.py): each list's sort key
(its time, then its id) after what it is narrowed to (the customer, the VPS, the subscription,
the kind), so a page deep in a list costs what the first one does.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# The same indexes are declared on the models (orchestrator/core/models), which create_all builds.
INDEXES = {
    "job": {"ix_job_newest": ["created_at", "id"], "ix_job_vps_newest": ["vps_id", "created_at", "id"]},
    "jobevent": {"ix_jobevent_vps_newest": ["vps_id", "at", "id"]},
    "audit": {"ix_audit_vps_newest": ["vps_id", "at", "id"]},
    "backup": {"ix_backup_newest": ["created_at", "id"], "ix_backup_vps_newest": ["vps_id", "created_at", "id"]},
    "invoice": {"ix_invoice_newest": ["issued_at", "id"],
                "ix_invoice_owner_newest": ["customer_id", "issued_at", "id"]},
    "subscription": {"ix_subscription_newest": ["created_at", "id"],
                     "ix_subscription_owner_newest": ["customer_id", "created_at", "id"]},
    "incident": {"ix_incident_newest": ["opened_at", "id"],
                 "ix_incident_owner_newest": ["customer_id", "opened_at", "id"],
                 "ix_incident_vps_newest": ["vps_id", "opened_at", "id"]},
    "ddarequest": {"ix_ddarequest_newest": ["requested_at", "id"],
                   "ix_ddarequest_owner_newest": ["customer_id", "requested_at", "id"]},
    "changeorder": {"ix_changeorder_vps_newest": ["vps_id", "requested_at", "id"]},
    "breachnotice": {"ix_breachnotice_subscription_newest": ["subscription_id", "recorded_at", "id"]},
    "evidence": {"ix_evidence_vps_newest": ["vps_id", "fetched_at", "id"]},
    "maintenance": {"ix_maintenance_kind_starts": ["kind", "starts_at", "id"]},
    "apitoken": {"ix_apitoken_owner": ["customer_id", "id"]},
}


def upgrade() -> None:
    for table, indexes in INDEXES.items():
        for name, columns in indexes.items():
            op.create_index(name, table, columns)


def downgrade() -> None:
    for table, indexes in INDEXES.items():
        for name in indexes:
            op.drop_index(name, table)
