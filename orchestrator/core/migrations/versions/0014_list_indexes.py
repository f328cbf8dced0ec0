"""Indexes for lists read a page at a time, newest first: a customer's VPS and everyone's
(``ix_vps_owner_newest``, ``ix_vps_newest``: (created_at, id) after the owner).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

INDEXES = {"ix_vps_owner_newest": ["customer_id", "created_at", "id"], "ix_vps_newest": ["created_at", "id"]}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "vps", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, "vps")
