"""A failed job's error in the words its client may read (``job.public_error``); the error itself
(which may name hosts, paths and workers) stays for staff.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job", sa.Column("public_error", sa.String(length=2000), nullable=True))


def downgrade() -> None:
    op.drop_column("job", "public_error")
