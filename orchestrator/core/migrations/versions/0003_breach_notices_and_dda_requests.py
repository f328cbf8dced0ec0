"""Breach notices (R10-breach) and requests for the Statement of Applicability (R2-dda).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breachnotice",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("subscription_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("breach", sa.String(length=2000), nullable=False),
        sa.Column("letter_sent_on", sa.Date(), nullable=True),
        sa.Column("cure_by", sa.Date(), nullable=True),
        sa.Column("terminates_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=True),
        sa.Column("remedied_at", sa.DateTime(), nullable=True),
        sa.Column("remedied_by", sa.String(length=100), nullable=True),
        sa.Column("remedy_note", sa.String(length=2000), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscription.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_breachnotice_customer_id"), "breachnotice", ["customer_id"], unique=False)
    op.create_index(op.f("ix_breachnotice_status"), "breachnotice", ["status"], unique=False)
    op.create_index(op.f("ix_breachnotice_subscription_id"), "breachnotice", ["subscription_id"], unique=False)
    op.create_table(
        "ddarequest",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=2000), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=True),
        sa.Column("approval", sa.String(length=16), nullable=False),
        sa.Column("officer", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("refusal_reason", sa.String(length=2000), nullable=False),
        sa.Column("nda_reference", sa.String(length=200), nullable=True),
        sa.Column("nda_signed_on", sa.Date(), nullable=True),
        sa.Column("nda_recorded_by", sa.String(length=100), nullable=True),
        sa.Column("nda_recorded_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_ddarequest_customer_id"), "ddarequest", ["customer_id"], unique=False)


def downgrade() -> None:
    op.drop_table("ddarequest")
    op.drop_table("breachnotice")
