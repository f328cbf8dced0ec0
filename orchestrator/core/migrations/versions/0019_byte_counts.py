"""Counts of bytes in 64 bits: a backup's size, an image's sizes, a VPS's hourly and cumulative
traffic.  PostgreSQL's INTEGER stops at 2 GiB: recording the backup of a 2 GiB disk failed there
(SQLite's integers were 64 bits already; the column is declared BIGINT on both).

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

COLUMNS = {
    "backup": ("size_bytes",),
    "image": ("size_bytes", "virtual_size_bytes"),
    "trafficsample": ("rx_bytes", "tx_bytes"),
    "trafficcounter": ("rx_bytes", "tx_bytes"),
}


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)
