"""The contract workflows (issue 4): deadline jobs (``job.scheduled_at``, the ``cancelled``
status), subscriptions, invoices, the SYNTEC index, payment defaults, erasures, change orders,
incidents, traffic samples and counters; a compromise's reinstall and paid services; a
maintenance's kind and notices.

Columns added to existing tables are nullable, or NOT NULL with a server default that gives
existing rows their value (a maintenance recorded before is a ``maintenance`` with no notices
recorded).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NEW_TABLES = ("syntecindex", "erasure", "changeorder", "incident", "subscription", "trafficcounter",
              "trafficsample", "invoice", "paymentdefault")
COMPROMISE_COLUMNS = ("image", "reinstall_job_id", "backup_invoice_id", "transfer_invoice_id")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # SQLite stores the enum as VARCHAR(9), long enough already; PostgreSQL has a type to extend.
        op.execute("ALTER TYPE jobstatus ADD VALUE IF NOT EXISTS 'cancelled'")

    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("scheduled_at", sa.DateTime(), nullable=True))
        batch.create_index("ix_job_scheduled_at", ["scheduled_at"], unique=False)
        batch.create_index("ix_job_ready", ["status", "not_before"], unique=False)
    # Every job now carries the instant it may run from (its asking, unless scheduled later): the
    # claim finds ready jobs by (status, not_before) without reading the waiting ones.
    op.execute("UPDATE job SET not_before = created_at WHERE not_before IS NULL")
    with op.batch_alter_table("compromise") as batch:
        batch.add_column(sa.Column("image", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("reinstall_job_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("backup_invoice_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("transfer_invoice_id", sa.String(length=36), nullable=True))
    with op.batch_alter_table("maintenance") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="maintenance"))
        batch.add_column(sa.Column("notice_ids", sa.JSON(), nullable=False, server_default="[]"))

    op.create_table('syntecindex',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('value', sa.String(length=24), nullable=False),
    sa.Column('recorded_by', sa.String(length=100), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('month')
    )
    op.create_table('erasure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('vps_id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('volumes', sa.JSON(), nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_erasure_customer_id'), 'erasure', ['customer_id'], unique=False)
    op.create_index(op.f('ix_erasure_vps_id'), 'erasure', ['vps_id'], unique=False)
    op.create_table('changeorder',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=True),
    sa.Column('vps_id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('current', sa.JSON(), nullable=False),
    sa.Column('requested', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('rent_ht', sa.String(length=24), nullable=True),
    sa.Column('fee_ht', sa.String(length=24), nullable=True),
    sa.Column('requested_by', sa.String(length=100), nullable=False),
    sa.Column('requested_at', sa.DateTime(), nullable=True),
    sa.Column('request_note', sa.String(length=500), nullable=False),
    sa.Column('decided_by', sa.String(length=100), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('decision_note', sa.String(length=500), nullable=False),
    sa.Column('accepted_at', sa.DateTime(), nullable=True),
    sa.Column('job_id', sa.String(length=36), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('outcome', sa.String(length=2000), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['vps_id'], ['vps.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_changeorder_customer_id'), 'changeorder', ['customer_id'], unique=False)
    op.create_index(op.f('ix_changeorder_number'), 'changeorder', ['number'], unique=True)
    op.create_index(op.f('ix_changeorder_status'), 'changeorder', ['status'], unique=False)
    op.create_index(op.f('ix_changeorder_vps_id'), 'changeorder', ['vps_id'], unique=False)
    op.create_table('incident',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('vps_id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('malfunction', sa.String(length=64), nullable=False),
    sa.Column('description', sa.String(length=2000), nullable=False),
    sa.Column('opened_by', sa.String(length=100), nullable=False),
    sa.Column('opened_at', sa.DateTime(), nullable=True),
    sa.Column('fix_deadline', sa.DateTime(), nullable=True),
    sa.Column('force_majeure', sa.Boolean(), nullable=False),
    sa.Column('force_majeure_note', sa.String(length=500), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('resolution', sa.String(length=2000), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['vps_id'], ['vps.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_incident_customer_id'), 'incident', ['customer_id'], unique=False)
    op.create_index(op.f('ix_incident_opened_at'), 'incident', ['opened_at'], unique=False)
    op.create_index(op.f('ix_incident_vps_id'), 'incident', ['vps_id'], unique=False)
    # R5.2-keep-running: at most one open incident per VPS and malfunction opened by the reconciler
    open_auto = sa.text("resolved_at IS NULL AND opened_by = 'reconciler'")
    op.create_index('ux_incident_open_auto', 'incident', ['vps_id', 'malfunction'], unique=True,
                    sqlite_where=open_auto, postgresql_where=open_auto)
    op.create_table('subscription',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('vps_id', sa.String(length=36), nullable=True),
    sa.Column('term_months', sa.Integer(), nullable=False),
    sa.Column('billing_period', sa.String(length=16), nullable=False),
    sa.Column('started_on', sa.Date(), nullable=True),
    sa.Column('rent_ht', sa.String(length=24), nullable=False),
    sa.Column('setup_fee_ht', sa.String(length=24), nullable=False),
    sa.Column('contract_index', sa.String(length=24), nullable=True),
    sa.Column('bank_country', sa.String(length=2), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=True),
    sa.Column('non_renewal_received_at', sa.DateTime(), nullable=True),
    sa.Column('non_renewal_channel', sa.String(length=16), nullable=True),
    sa.Column('reversibility_received_at', sa.DateTime(), nullable=True),
    sa.Column('terminated_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['vps_id'], ['vps.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_subscription_customer_id'), 'subscription', ['customer_id'], unique=False)
    op.create_index(op.f('ix_subscription_status'), 'subscription', ['status'], unique=False)
    op.create_index(op.f('ix_subscription_vps_id'), 'subscription', ['vps_id'], unique=False)
    op.create_table('trafficcounter',
    sa.Column('vps_id', sa.String(length=36), nullable=False),
    sa.Column('rx_bytes', sa.Integer(), nullable=False),
    sa.Column('tx_bytes', sa.Integer(), nullable=False),
    sa.Column('read_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['vps_id'], ['vps.id'], ),
    sa.PrimaryKeyConstraint('vps_id')
    )
    op.create_table('trafficsample',
    sa.Column('vps_id', sa.String(length=36), nullable=False),
    sa.Column('hour', sa.DateTime(), nullable=False),
    sa.Column('rx_bytes', sa.Integer(), nullable=False),
    sa.Column('tx_bytes', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['vps_id'], ['vps.id'], ),
    sa.PrimaryKeyConstraint('vps_id', 'hour')
    )
    op.create_table('invoice',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.String(length=36), nullable=True),
    sa.Column('vps_id', sa.String(length=36), nullable=True),
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('purpose_ref', sa.String(length=36), nullable=True),
    sa.Column('period_start', sa.Date(), nullable=True),
    sa.Column('period_end', sa.Date(), nullable=True),
    sa.Column('issued_at', sa.DateTime(), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('lines', sa.JSON(), nullable=False),
    sa.Column('total_ht', sa.String(length=24), nullable=False),
    sa.Column('total_vat', sa.String(length=24), nullable=False),
    sa.Column('total_ttc', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.Column('payment_method', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['subscription_id'], ['subscription.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('subscription_id', 'purpose', 'period_start')
    )
    op.create_index(op.f('ix_invoice_customer_id'), 'invoice', ['customer_id'], unique=False)
    op.create_index(op.f('ix_invoice_due_on'), 'invoice', ['due_on'], unique=False)
    op.create_index(op.f('ix_invoice_number'), 'invoice', ['number'], unique=True)
    op.create_index(op.f('ix_invoice_purpose_ref'), 'invoice', ['purpose_ref'], unique=False)
    op.create_index(op.f('ix_invoice_status'), 'invoice', ['status'], unique=False)
    op.create_index(op.f('ix_invoice_subscription_id'), 'invoice', ['subscription_id'], unique=False)
    op.create_index(op.f('ix_invoice_vps_id'), 'invoice', ['vps_id'], unique=False)
    op.create_table('paymentdefault',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('invoice_id', sa.String(length=36), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('opened_at', sa.DateTime(), nullable=True),
    sa.Column('opened_by', sa.String(length=100), nullable=False),
    sa.Column('notice_outbox_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('settled_at', sa.DateTime(), nullable=True),
    sa.Column('terminated_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoice.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_paymentdefault_customer_id'), 'paymentdefault', ['customer_id'], unique=False)
    op.create_index(op.f('ix_paymentdefault_invoice_id'), 'paymentdefault', ['invoice_id'], unique=False)
    op.create_index(op.f('ix_paymentdefault_status'), 'paymentdefault', ['status'], unique=False)


def downgrade() -> None:
    for table in reversed(NEW_TABLES):
        op.drop_table(table)
    with op.batch_alter_table("maintenance") as batch:
        batch.drop_column("notice_ids")
        batch.drop_column("kind")
    with op.batch_alter_table("compromise") as batch:
        for column in reversed(COMPROMISE_COLUMNS):
            batch.drop_column(column)
    with op.batch_alter_table("job") as batch:
        batch.drop_index("ix_job_ready")
        batch.drop_index("ix_job_scheduled_at")
        batch.drop_column("scheduled_at")
    # PostgreSQL cannot remove a value from an enum type: 'cancelled' stays in jobstatus, unused.
