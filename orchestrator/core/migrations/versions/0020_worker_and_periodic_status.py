"""What each worker process last saw of the queue (``workerstatus``) and what each periodic duty
last did (``periodicrun``): records for operators, shown by ``GET /metrics``
(orchestrator/engine/status.py).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workerstatus",
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("looks", sa.Integer(), nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.Column("idle_at", sa.DateTime(), nullable=True),
        sa.Column("next_due_at", sa.DateTime(), nullable=True),
        sa.Column("next_due_job_id", sa.String(length=36), nullable=True),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("worker"),
    )
    op.create_table(
        "periodicrun",
        sa.Column("task", sa.String(length=32), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_started_at", sa.DateTime(), nullable=True),
        sa.Column("last_finished_at", sa.DateTime(), nullable=True),
        sa.Column("last_worker", sa.String(length=100), nullable=False),
        sa.Column("last_facts", sa.JSON(), nullable=False),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.PrimaryKeyConstraint("task"),
    )


def downgrade() -> None:
    op.drop_table("periodicrun")
    op.drop_table("workerstatus")
