"""OpenTelemetry spans kept in the ledger (the opt-in ledger span sink, for `wflo trace`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('wflo_spans',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('trace_id', sa.String(length=32), nullable=False),
    sa.Column('span_id', sa.String(length=16), nullable=False),
    sa.Column('parent_span_id', sa.String(length=16), nullable=True),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_message', sa.Text(), nullable=True),
    sa.Column('flow_run_id', sa.String(length=36), nullable=True),
    sa.Column('attributes', sa.JSON(), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('wflo_spans', schema=None) as batch_op:
        batch_op.create_index('ix_wflo_span_flow_run', ['flow_run_id'], unique=False)
        batch_op.create_index('ix_wflo_span_trace', ['trace_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('wflo_spans', schema=None) as batch_op:
        batch_op.drop_index('ix_wflo_span_trace')
        batch_op.drop_index('ix_wflo_span_flow_run')
    op.drop_table('wflo_spans')
