"""Backups copied off their VPS's host (``backup.replica_host_id``: the host that holds the copy,
used to rebuild the VPS elsewhere when its host is lost, R5.2-keep-running), and a VPS's
placement group (``vps.placement_group``: anti-affinity between one customer's VPS) and the sum
of its data disks' sizes (``vps.data_disk_gib_total``, summed by placement in SQL, from the
index ``ix_vps_placement`` alone); the address other hosts reach a host's QEMU at for a live
migration (``host.migration_address``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("host") as batch:
        batch.add_column(sa.Column("migration_address", sa.String(length=255), nullable=True))
    with op.batch_alter_table("vps") as batch:
        batch.add_column(sa.Column("placement_group", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("data_disk_gib_total", sa.Integer(), nullable=False, server_default="0"))
    vps = sa.table("vps", sa.column("id", sa.String()), sa.column("data_disks", sa.JSON()),
                   sa.column("data_disk_gib_total", sa.Integer()))
    op.create_index("ix_vps_placement", "vps", ["host_id", "status", "vcpus", "memory_mib", "disk_gib",
                                                "data_disk_gib_total"])
    connection = op.get_bind()
    for vps_id, disks in connection.execute(sa.select(vps.c.id, vps.c.data_disks)).all():
        total = sum(int(d["size_gib"]) for d in disks or [])
        if total:
            connection.execute(vps.update().where(vps.c.id == vps_id).values(data_disk_gib_total=total))
    with op.batch_alter_table("backup") as batch:
        batch.add_column(sa.Column("replica_host_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_backup_replica_host", "host", ["replica_host_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("host") as batch:
        batch.drop_column("migration_address")
    with op.batch_alter_table("backup") as batch:
        batch.drop_constraint("fk_backup_replica_host", type_="foreignkey")
        batch.drop_column("replica_host_id")
    op.drop_index("ix_vps_placement", table_name="vps")
    with op.batch_alter_table("vps") as batch:
        batch.drop_column("data_disk_gib_total")
        batch.drop_column("placement_group")
