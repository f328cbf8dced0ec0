"""API tokens expire (``apitoken.expires_at``, NOT NULL), record their last use
(``last_used_at``) and, for automation, the scopes they may call (``scopes``).

Tokens made before this revision had no expiry.  They get one: 90 days from the upgrade (the
default lifetime, ``VPSCTL_TOKEN_DAYS``), on the orchestrator's clock.  Not "never": the point of
this change is that no token lives forever, and a token that was handed out before expiries
existed is exactly the kind nobody remembers to revoke.  Not "now": the upgrade must not lock out
every client and script on the spot; 90 days leave time to make new tokens, and ``vpsctl token
list`` shows each one's date.

Automation tokens made before had every staff right.  They get every scope this revision knows
(written out below, not read from the code, which will change), so nothing they did stops
working at the upgrade; narrower ones are made with ``vpsctl token create --scope``.  Support and
customer tokens carry no scopes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

from datetime import UTC, timedelta

import sqlalchemy as sa
from alembic import op

from orchestrator.core.clock import utcnow

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

EXISTING_TOKEN_DAYS = 90
ALL_SCOPES = [
    "billing:read", "billing:write", "customers:read", "customers:write", "dda:read", "dda:write", "hosts:read",
    "incidents:read", "incidents:write", "maintenance:read", "maintenance:write", "security:read",
    "security:write", "vps:read", "vps:write",
]


def upgrade() -> None:
    with op.batch_alter_table("apitoken") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("scopes", sa.JSON(), nullable=False, server_default="[]"))
    token = sa.table("apitoken", sa.column("expires_at", sa.DateTime), sa.column("scopes", sa.JSON))
    # Stored as naive UTC, as the models' UTCDateTime stores every instant.
    expires = (utcnow() + timedelta(days=EXISTING_TOKEN_DAYS)).astimezone(UTC).replace(tzinfo=None)
    op.execute(sa.update(token).values(expires_at=expires))
    # A literal: PostgreSQL's column is of the enum type ``role``, which a text parameter does not equal.
    op.execute(sa.update(token).where(sa.text("role = 'automation'")).values(scopes=ALL_SCOPES))
    with op.batch_alter_table("apitoken") as batch:
        batch.alter_column("expires_at", existing_type=sa.DateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("apitoken") as batch:
        batch.drop_column("scopes")
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
