"""How consistent a backup is (``backup.consistency``): ``quiesced`` when the guest agent froze the
running guest's filesystems while the copy began, ``crash-consistent`` when no agent answered,
``stopped`` for a disk copied while nothing wrote to it; ``unknown`` for backups made before.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backup") as batch:
        batch.add_column(sa.Column("consistency", sa.String(length=32), nullable=False, server_default="unknown"))


def downgrade() -> None:
    with op.batch_alter_table("backup") as batch:
        batch.drop_column("consistency")
