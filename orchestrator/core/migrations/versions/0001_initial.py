"""The schema of the first release (commit f15dd45): customers, tokens, hosts, images, VPS, jobs
and their events, maintenances, compromises, audit, backups and the outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = ("audit", "customer", "host", "image", "apitoken", "hostimage", "maintenance", "outbox", "vps",
          "backup", "compromise", "job", "maintenancevps", "jobevent")


def upgrade() -> None:
    op.create_table('audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=True),
    sa.Column('vps_id', sa.String(length=36), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_audit_vps_id'), 'audit', ['vps_id'], unique=False)
    op.create_table('customer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_customer_name'), 'customer', ['name'], unique=True)
    op.create_table('host',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('uri', sa.String(length=500), nullable=False),
    sa.Column('site', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('domain_type', sa.String(length=16), nullable=False),
    sa.Column('vcpus', sa.Integer(), nullable=False),
    sa.Column('memory_mib', sa.Integer(), nullable=False),
    sa.Column('disk_gib', sa.Integer(), nullable=False),
    sa.Column('pool_name', sa.String(length=64), nullable=False),
    sa.Column('network_name', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_host_name'), 'host', ['name'], unique=True)
    op.create_table('image',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('os', sa.String(length=100), nullable=False),
    sa.Column('os_family', sa.String(length=32), nullable=False),
    sa.Column('format', sa.String(length=16), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('virtual_size_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('min_disk_gib', sa.Integer(), nullable=False),
    sa.Column('min_memory_mib', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=False),
    sa.Column('built_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('apitoken',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('role', sa.Enum('customer', 'support', 'automation', name='role'), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_apitoken_token_hash'), 'apitoken', ['token_hash'], unique=True)
    op.create_table('hostimage',
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.Column('image_name', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('volume', sa.String(length=200), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['host_id'], ['host.id'], ),
    sa.PrimaryKeyConstraint('host_id', 'image_name', 'sha256')
    )
    op.create_table('maintenance',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=True),
    sa.Column('starts_at', sa.DateTime(), nullable=True),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['host_id'], ['host.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_maintenance_starts_at'), 'maintenance', ['starts_at'], unique=False)
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('to_address', sa.String(length=254), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('template', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('body_text', sa.String(), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('vps_id', sa.String(length=36), nullable=True),
    sa.Column('job_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=2000), nullable=True),
    sa.Column('message_id', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_outbox_customer_id'), 'outbox', ['customer_id'], unique=False)
    op.create_index(op.f('ix_outbox_job_id'), 'outbox', ['job_id'], unique=False)
    op.create_index(op.f('ix_outbox_next_attempt_at'), 'outbox', ['next_attempt_at'], unique=False)
    op.create_index(op.f('ix_outbox_status'), 'outbox', ['status'], unique=False)
    op.create_index(op.f('ix_outbox_vps_id'), 'outbox', ['vps_id'], unique=False)
    op.create_table('vps',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=True),
    sa.Column('image', sa.String(length=64), nullable=False),
    sa.Column('vcpus', sa.Integer(), nullable=False),
    sa.Column('memory_mib', sa.Integer(), nullable=False),
    sa.Column('disk_gib', sa.Integer(), nullable=False),
    sa.Column('max_vcpus', sa.Integer(), nullable=False),
    sa.Column('max_memory_mib', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('building', 'running', 'stopped', 'suspended', 'cut_off', 'error', 'deleting',
                                'deleted', name='vpsstatus'), nullable=False),
    sa.Column('root_generation', sa.Integer(), nullable=False),
    sa.Column('cut_off', sa.Boolean(), nullable=False),
    sa.Column('cut_off_reason', sa.String(length=64), nullable=True),
    sa.Column('mail_blocked', sa.Boolean(), nullable=False),
    sa.Column('suspend_reason', sa.String(length=32), nullable=True),
    sa.Column('suspended_by', sa.String(length=16), nullable=True),
    sa.Column('task', sa.String(length=32), nullable=True),
    sa.Column('mac', sa.String(length=17), nullable=False),
    sa.Column('data_disks', sa.JSON(), nullable=False),
    sa.Column('ssh_authorized_keys', sa.JSON(), nullable=False),
    sa.Column('ssh_host_keys', sa.JSON(), nullable=False),
    sa.Column('addresses', sa.JSON(), nullable=False),
    sa.Column('error', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=True),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['host_id'], ['host.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_vps_customer_id'), 'vps', ['customer_id'], unique=False)
    op.create_index(op.f('ix_vps_host_id'), 'vps', ['host_id'], unique=False)
    op.create_index(op.f('ix_vps_name'), 'vps', ['name'], unique=False)
    op.create_index(op.f('ix_vps_status'), 'vps', ['status'], unique=False)
    op.create_table('backup',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('vps_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('pool', sa.String(length=64), nullable=False),
    sa.Column('volume', sa.String(length=200), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['vps_id'], ['vps.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_backup_vps_id'), 'backup', ['vps_id'], unique=False)
    op.create_table('compromise',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('vps_id', sa.String(length=36), nullable=False),
    sa.Column('reported_by', sa.String(length=100), nullable=False),
    sa.Column('reported_at', sa.DateTime(), nullable=True),
    sa.Column('details', sa.String(length=2000), nullable=False),
    sa.Column('notice_outbox_id', sa.Integer(), nullable=True),
    sa.Column('customer_agreement_at', sa.DateTime(), nullable=True),
    sa.Column('customer_agreement_note', sa.String(length=500), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['vps_id'], ['vps.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_compromise_vps_id'), 'compromise', ['vps_id'], unique=False)
    op.create_table('job',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('vps_id', sa.String(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('queued', 'running', 'succeeded', 'failed', name='jobstatus'), nullable=False),
    sa.Column('step', sa.String(length=64), nullable=True),
    sa.Column('steps_done', sa.JSON(), nullable=False),
    sa.Column('steps_total', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=100), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(), nullable=True),
    sa.Column('error', sa.String(length=4000), nullable=True),
    sa.Column('requested_by', sa.String(length=100), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=True),
    sa.Column('not_before', sa.DateTime(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['vps_id'], ['vps.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('requested_by', 'idempotency_key')
    )
    op.create_index(op.f('ix_job_created_at'), 'job', ['created_at'], unique=False)
    op.create_index(op.f('ix_job_status'), 'job', ['status'], unique=False)
    op.create_index(op.f('ix_job_vps_id'), 'job', ['vps_id'], unique=False)
    op.create_table('maintenancevps',
    sa.Column('maintenance_id', sa.String(length=36), nullable=False),
    sa.Column('vps_id', sa.String(length=36), nullable=False),
    sa.Column('starts_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['maintenance_id'], ['maintenance.id'], ),
    sa.ForeignKeyConstraint(['vps_id'], ['vps.id'], ),
    sa.PrimaryKeyConstraint('maintenance_id', 'vps_id')
    )
    op.create_index(op.f('ix_maintenancevps_starts_at'), 'maintenancevps', ['starts_at'], unique=False)
    op.create_table('jobevent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('vps_id', sa.String(length=36), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=True),
    sa.Column('step', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('message', sa.String(length=2000), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_jobevent_job_id'), 'jobevent', ['job_id'], unique=False)
    op.create_index(op.f('ix_jobevent_vps_id'), 'jobevent', ['vps_id'], unique=False)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        for enum in ("jobstatus", "vpsstatus", "role"):
            op.execute(f"DROP TYPE IF EXISTS {enum}")
