"""Budget leases: a process holds a slice of a budget window and spends it call by call.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('wflo_budget_reservations', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('kind', sa.String(length=8), nullable=False, server_default='call')
        )
        batch_op.add_column(
            sa.Column(
                'pending_usd',
                sa.Numeric(precision=20, scale=10),
                nullable=False,
                server_default='0',
            )
        )
        batch_op.add_column(
            sa.Column(
                'entries_usd',
                sa.Numeric(precision=20, scale=10),
                nullable=False,
                server_default='0',
            )
        )
        batch_op.add_column(sa.Column('touched_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('owner', sa.String(length=255), nullable=True))
        batch_op.create_index('ix_wflo_reservation_window', ['window_id', 'kind', 'status'])
    with op.batch_alter_table('wflo_cost_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_id', sa.String(length=36), nullable=True))
        batch_op.create_index('ix_wflo_cost_lease', ['lease_id'])


def downgrade() -> None:
    with op.batch_alter_table('wflo_cost_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_wflo_cost_lease')
        batch_op.drop_column('lease_id')
    with op.batch_alter_table('wflo_budget_reservations', schema=None) as batch_op:
        batch_op.drop_index('ix_wflo_reservation_window')
        batch_op.drop_column('owner')
        batch_op.drop_column('touched_at')
        batch_op.drop_column('entries_usd')
        batch_op.drop_column('pending_usd')
        batch_op.drop_column('kind')
