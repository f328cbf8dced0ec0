"""A job names the workflow record it was asked for (``job.cause``): workflows find their jobs by
it instead of by keys inside the operations' parameters.  Existing jobs get theirs from those keys.

Revision ID: 0005
Revises: 0004_evidence
Create Date: 2026-11-29
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004_evidence"
branch_labels = None
depends_on = None

# Which parameter named the workflow record, by kind, in the order they are looked for.
CAUSES: dict[str, tuple[tuple[str, str], ...]] = {
    "suspend": (("default_id", "payment_default"),),
    "erase": (("default_id", "payment_default"),),
    "terminate": (("default_id", "payment_default"), ("breach_notice_id", "breach_notice"),
                  ("subscription_id", "subscription")),
    "resize": (("change_order_id", "change_order"),),
    "reinstall": (("compromise_id", "compromise"),),
    "backup": (("compromise_id", "compromise"),),
    "incident_deadline": (("incident_id", "incident"),),
    "recover": (("incident_id", "incident"),),
    "hook": (("operation_job_id", "job"),),
}


def cause_of(kind: str, params: dict[str, Any]) -> str | None:
    for key, record in CAUSES.get(kind, ()):
        if params.get(key):
            return f"{record}:{params[key]}"
    return None


def upgrade() -> None:
    op.add_column("job", sa.Column("cause", sa.String(length=80), nullable=True))
    op.create_index(op.f("ix_job_cause"), "job", ["cause"], unique=False)
    job = sa.table("job", sa.column("id", sa.String), sa.column("kind", sa.String), sa.column("params", sa.JSON),
                   sa.column("cause", sa.String))
    connection = op.get_bind()
    rows = connection.execute(sa.select(job.c.id, job.c.kind, job.c.params)
                              .where(job.c.kind.in_(list(CAUSES)))).all()
    for job_id, kind, params in rows:
        values = json.loads(params) if isinstance(params, str) else (params or {})
        cause = cause_of(kind, values)
        if cause is not None:
            connection.execute(sa.update(job).where(job.c.id == job_id).values(cause=cause))


def downgrade() -> None:
    op.drop_index(op.f("ix_job_cause"), table_name="job")
    op.drop_column("job", "cause")
