"""Initial ledger schema: audit log, costs, budgets, approvals, policies, compensations, snapshots.

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('wflo_approval_requests',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('flow_run_id', sa.String(length=36), nullable=True),
    sa.Column('task_run_id', sa.String(length=36), nullable=True),
    sa.Column('action', sa.String(length=255), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('approvers', sa.JSON(), nullable=False),
    sa.Column('quorum', sa.Integer(), nullable=False),
    sa.Column('requested_by', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('tier', sa.Integer(), nullable=False),
    sa.Column('keyset', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('wflo_approval_requests', schema=None) as batch_op:
        batch_op.create_index('ix_wflo_approval_status', ['status', 'created_at'], unique=False)

    op.create_table('wflo_audit_events',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event', sa.String(length=100), nullable=False),
    sa.Column('flow_run_id', sa.String(length=36), nullable=True),
    sa.Column('task_run_id', sa.String(length=36), nullable=True),
    sa.Column('trace_id', sa.String(length=32), nullable=True),
    sa.Column('span_id', sa.String(length=16), nullable=True),
    sa.Column('flow_name', sa.String(length=255), nullable=True),
    sa.Column('task_name', sa.String(length=255), nullable=True),
    sa.Column('deployment_id', sa.String(length=36), nullable=True),
    sa.Column('actor', sa.String(length=255), nullable=True),
    sa.Column('outcome', sa.String(length=64), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('wflo_audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_wflo_audit_flow_run', ['flow_run_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_wflo_audit_trace', ['trace_id'], unique=False)

    op.create_table('wflo_budget_windows',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('budget_key', sa.String(length=512), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('limit_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('spent_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('reserved_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('alerts_fired', sa.JSON(), nullable=False),
    sa.Column('exceeded_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('budget_key', 'window_start', name='uq_wflo_budget_window')
    )
    op.create_table('wflo_budgets',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('scope_value', sa.String(length=255), nullable=True),
    sa.Column('max_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('alert_thresholds', sa.JSON(), nullable=False),
    sa.Column('on_exceeded', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('wflo_compensations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('flow_run_id', sa.String(length=36), nullable=False),
    sa.Column('task_run_id', sa.String(length=36), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('handler', sa.String(length=512), nullable=False),
    sa.Column('arguments', sa.JSON(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('retry_delay_s', sa.Float(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key', name='uq_wflo_compensation_key')
    )
    with op.batch_alter_table('wflo_compensations', schema=None) as batch_op:
        batch_op.create_index('ix_wflo_compensation_run', ['flow_run_id', 'seq'], unique=False)

    op.create_table('wflo_cost_entries',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('flow_run_id', sa.String(length=36), nullable=True),
    sa.Column('task_run_id', sa.String(length=36), nullable=True),
    sa.Column('flow_name', sa.String(length=255), nullable=True),
    sa.Column('deployment_id', sa.String(length=36), nullable=True),
    sa.Column('work_pool', sa.String(length=255), nullable=True),
    sa.Column('user', sa.String(length=255), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('model', sa.String(length=255), nullable=False),
    sa.Column('requested_model', sa.String(length=255), nullable=True),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('output_tokens', sa.Integer(), nullable=False),
    sa.Column('cached_input_tokens', sa.Integer(), nullable=False),
    sa.Column('cost_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('saved_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('priced', sa.Boolean(), nullable=False),
    sa.Column('cached', sa.Boolean(), nullable=False),
    sa.Column('latency_ms', sa.Double(), nullable=True),
    sa.Column('request_id', sa.String(length=255), nullable=True),
    sa.Column('trace_id', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('wflo_cost_entries', schema=None) as batch_op:
        batch_op.create_index('ix_wflo_cost_flow_run', ['flow_run_id'], unique=False)
        batch_op.create_index('ix_wflo_cost_time', ['occurred_at'], unique=False)

    op.create_table('wflo_policy_decisions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('policy_name', sa.String(length=255), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('condition', sa.Text(), nullable=False),
    sa.Column('matched', sa.Boolean(), nullable=False),
    sa.Column('actions', sa.JSON(), nullable=False),
    sa.Column('flow_run_id', sa.String(length=36), nullable=True),
    sa.Column('task_run_id', sa.String(length=36), nullable=True),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('wflo_policy_decisions', schema=None) as batch_op:
        batch_op.create_index('ix_wflo_policy_flow_run', ['flow_run_id'], unique=False)

    op.create_table('wflo_snapshots',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('flow_run_id', sa.String(length=36), nullable=True),
    sa.Column('task_run_id', sa.String(length=36), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('wflo_snapshots', schema=None) as batch_op:
        batch_op.create_index('ix_wflo_snapshot_run', ['flow_run_id', 'created_at'], unique=False)

    op.create_table('wflo_approval_decisions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('approver', sa.String(length=255), nullable=False),
    sa.Column('approved', sa.Boolean(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.String(length=128), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['wflo_approval_requests.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('nonce', name='uq_wflo_decision_nonce'),
    sa.UniqueConstraint('request_id', 'approver', name='uq_wflo_decision_approver')
    )
    op.create_table('wflo_budget_reservations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('window_id', sa.String(length=36), nullable=False),
    sa.Column('amount_usd', sa.Numeric(precision=20, scale=10), nullable=False),
    sa.Column('settled_usd', sa.Numeric(precision=20, scale=10), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('flow_run_id', sa.String(length=36), nullable=True),
    sa.Column('cost_entry_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['window_id'], ['wflo_budget_windows.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('wflo_budget_reservations', schema=None) as batch_op:
        batch_op.create_index('ix_wflo_reservation_status', ['status', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('wflo_budget_reservations', schema=None) as batch_op:
        batch_op.drop_index('ix_wflo_reservation_status')

    op.drop_table('wflo_budget_reservations')
    op.drop_table('wflo_approval_decisions')
    with op.batch_alter_table('wflo_snapshots', schema=None) as batch_op:
        batch_op.drop_index('ix_wflo_snapshot_run')

    op.drop_table('wflo_snapshots')
    with op.batch_alter_table('wflo_policy_decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_wflo_policy_flow_run')

    op.drop_table('wflo_policy_decisions')
    with op.batch_alter_table('wflo_cost_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_wflo_cost_time')
        batch_op.drop_index('ix_wflo_cost_flow_run')

    op.drop_table('wflo_cost_entries')
    with op.batch_alter_table('wflo_compensations', schema=None) as batch_op:
        batch_op.drop_index('ix_wflo_compensation_run')

    op.drop_table('wflo_compensations')
    op.drop_table('wflo_budgets')
    op.drop_table('wflo_budget_windows')
    with op.batch_alter_table('wflo_audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_wflo_audit_trace')
        batch_op.drop_index('ix_wflo_audit_flow_run')

    op.drop_table('wflo_audit_events')
    with op.batch_alter_table('wflo_approval_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_wflo_approval_status')

    op.drop_table('wflo_approval_requests')
