"""Hosts of a fleet: how their guests are reached (``host.guest_proxy_command``), the SSH host key
of a qemu+ssh:// host (``host.ssh_host_key``), and the states placement reads: ``up`` becomes
``enabled`` and ``down`` becomes ``unreachable`` (``draining`` and ``disabled`` are new or kept).
An image's upload to a host is taken by one job at a time (``hostimage.state``, ``job_id``): the
rows written before were complete uploads (``ready``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("host") as batch:
        batch.add_column(sa.Column("guest_proxy_command", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("ssh_host_key", sa.String(length=2000), nullable=True))
    # Rows written before were written once their upload was complete.
    with op.batch_alter_table("hostimage") as batch:
        batch.add_column(sa.Column("state", sa.String(length=16), nullable=False, server_default="ready"))
        batch.add_column(sa.Column("job_id", sa.String(length=36), nullable=True))
    op.execute("UPDATE host SET state = 'enabled' WHERE state = 'up'")
    op.execute("UPDATE host SET state = 'unreachable' WHERE state = 'down'")


def downgrade() -> None:
    op.execute("UPDATE host SET state = 'up' WHERE state = 'enabled'")
    op.execute("UPDATE host SET state = 'down' WHERE state IN ('unreachable', 'draining')")
    op.execute("DELETE FROM hostimage WHERE state <> 'ready'")
    with op.batch_alter_table("hostimage") as batch:
        batch.drop_column("job_id")
        batch.drop_column("state")
    with op.batch_alter_table("host") as batch:
        batch.drop_column("ssh_host_key")
        batch.drop_column("guest_proxy_command")
