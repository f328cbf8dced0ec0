"""Evidence of what a VPS served (R6.3-evidence): one row per check, the raw response on disk.

Revision ID: 0004_evidence
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_evidence"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vps_id", sa.String(length=36), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("url", sa.String(length=2100), nullable=False),
        sa.Column("host_header", sa.String(length=255), nullable=True),
        sa.Column("fetched_at", sa.DateTime(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(["vps_id"], ["vps.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_evidence_vps_id"), "evidence", ["vps_id"], unique=False)
    op.create_index(op.f("ix_evidence_job_id"), "evidence", ["job_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_evidence_job_id"), table_name="evidence")
    op.drop_index(op.f("ix_evidence_vps_id"), table_name="evidence")
    op.drop_table("evidence")
