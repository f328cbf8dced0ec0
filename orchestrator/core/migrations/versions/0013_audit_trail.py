"""The audit log of every change asked through the API: on behalf of which customer, on which
object, the job it started, the client's address and the answer's status; indexes for the staff's
filters; and the log made append-only by the database itself (triggers that refuse UPDATE and
DELETE on ``audit``, on SQLite and PostgreSQL).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orchestrator.core.models.accounts import append_only_ddl

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("customer_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("object_type", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("object_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("job_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("address", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("result", sa.Integer(), nullable=True))
    for column in ("actor", "action", "customer_id", "object_id"):
        op.create_index(f"ix_audit_{column}", "audit", [column])
    # After the batch (which, on SQLite, rebuilds the table and would drop a trigger on it).
    for statement in append_only_ddl(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_append_only ON audit")
        op.execute("DROP FUNCTION audit_append_only()")
    else:
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER audit_no_{event}")
    for column in ("actor", "action", "customer_id", "object_id"):
        op.drop_index(f"ix_audit_{column}", "audit")
    with op.batch_alter_table("audit") as batch:
        for column in ("result", "address", "job_id", "object_id", "object_type", "customer_id"):
            batch.drop_column(column)
