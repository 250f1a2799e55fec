"""Approval state in typed columns: a frozen policy, lifecycle columns, waiters, deliveries.

The request's ``settings`` JSON held the gate's policy and every later change
(waiter heartbeat, delivery references, closed/resumed/applied flags), rewritten
whole by each writer. It becomes a ``policy`` column written once, lifecycle
columns, and two tables (``wflo_approval_waiters``, ``wflo_approval_deliveries``);
existing rows are moved over.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICY_KEYS = (
    'principals', 'allow_self_approval', 'on_timeout', 'tiers', 'code_salt',
    'correlation', 'mode', 'channels',
)

_requests = sa.table(
    'wflo_approval_requests',
    sa.column('id', sa.String),
    sa.column('decided_at', sa.DateTime(timezone=True)),
    sa.column('created_at', sa.DateTime(timezone=True)),
    sa.column('settings', sa.JSON),
    sa.column('policy', sa.JSON),
    sa.column('timeout_outcome', sa.String),
    sa.column('suspend_attempt', sa.Integer),
    sa.column('closed_at', sa.DateTime(timezone=True)),
    sa.column('resumed_at', sa.DateTime(timezone=True)),
    sa.column('applied_at', sa.DateTime(timezone=True)),
    sa.column('applied_by', sa.String),
)
_waiters = sa.table(
    'wflo_approval_waiters',
    sa.column('request_id', sa.String),
    sa.column('wake', sa.String),
    sa.column('host', sa.String),
    sa.column('pid', sa.Integer),
    sa.column('token', sa.String),
    sa.column('heartbeat_at', sa.DateTime(timezone=True)),
)
_deliveries = sa.table(
    'wflo_approval_deliveries',
    sa.column('id', sa.String),
    sa.column('request_id', sa.String),
    sa.column('tier', sa.Integer),
    sa.column('position', sa.Integer),
    sa.column('ref', sa.JSON),
    sa.column('delivered_at', sa.DateTime(timezone=True)),
)


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def upgrade() -> None:
    op.create_table('wflo_approval_waiters',
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('wake', sa.String(length=255), nullable=True),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=32), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['wflo_approval_requests.id'], ),
    sa.PrimaryKeyConstraint('request_id')
    )
    op.create_table('wflo_approval_deliveries',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('tier', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('ref', sa.JSON(), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['wflo_approval_requests.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id', 'tier', 'position', name='uq_wflo_approval_delivery')
    )
    # Plain ALTER TABLE (no batch): SQLite 3.35+ adds and drops these columns in
    # place; recreating the table would trip the foreign keys of its votes.
    op.add_column('wflo_approval_requests',
                  sa.Column('policy', sa.JSON(), nullable=False, server_default='{}'))
    op.add_column('wflo_approval_requests',
                  sa.Column('timeout_outcome', sa.String(length=16), nullable=True))
    op.add_column('wflo_approval_requests',
                  sa.Column('suspend_attempt', sa.Integer(), nullable=False, server_default='0'))
    for name in ('closed_at', 'resumed_at', 'applied_at'):
        op.add_column('wflo_approval_requests',
                      sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.add_column('wflo_approval_requests',
                  sa.Column('applied_by', sa.String(length=16), nullable=True))

    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_requests.c.id, _requests.c.settings, _requests.c.decided_at,
                  _requests.c.created_at)
    ).all()
    for request_id, settings, decided_at, created_at in rows:
        settings = dict(settings or {})
        settled_at = _when(decided_at or created_at)
        conn.execute(
            _requests.update().where(_requests.c.id == request_id).values(
                policy={k: settings[k] for k in POLICY_KEYS if k in settings},
                timeout_outcome=settings.get('timeout_outcome'),
                suspend_attempt=int(settings.get('suspend_attempt') or 0),
                closed_at=settled_at if settings.get('closed') else None,
                resumed_at=settled_at if settings.get('resumed') else None,
                applied_at=settled_at if settings.get('applied') else None,
                applied_by=settings.get('applied_by') if settings.get('applied') else None,
            )
        )
        waiter = settings.get('waiter') or {}
        if waiter.get('pid') is not None and waiter.get('host'):
            conn.execute(_waiters.insert().values(
                request_id=request_id,
                wake=waiter.get('wake'),
                host=str(waiter['host'])[:255],
                pid=int(waiter['pid']),
                token=str(waiter.get('token') or '')[:32],
                heartbeat_at=_when(waiter.get('heartbeat_at')),
            ))
        for key, ref in settings.items():
            parts = key.split(':')
            if len(parts) == 3 and parts[0] == 'delivery' and isinstance(ref, dict):
                conn.execute(_deliveries.insert().values(
                    id=str(uuid.uuid4()), request_id=request_id, tier=int(parts[1]),
                    position=int(parts[2]), ref=ref, delivered_at=settled_at,
                ))

    op.drop_column('wflo_approval_requests', 'settings')
    op.create_index('ix_wflo_approval_due', 'wflo_approval_requests',
                    ['status', 'deadline_at'], unique=False)
    op.create_index('ix_wflo_approval_unapplied', 'wflo_approval_requests',
                    ['applied_at', 'status'], unique=False)
    op.create_index('ix_wflo_approval_run', 'wflo_approval_requests',
                    ['flow_run_id', 'digest'], unique=False)


def downgrade() -> None:
    op.add_column('wflo_approval_requests',
                  sa.Column('settings', sa.JSON(), nullable=False, server_default='{}'))
    conn = op.get_bind()
    requests = conn.execute(sa.select(
        _requests.c.id, _requests.c.policy, _requests.c.timeout_outcome,
        _requests.c.suspend_attempt, _requests.c.closed_at, _requests.c.resumed_at,
        _requests.c.applied_at, _requests.c.applied_by,
    )).all()
    for (request_id, policy, outcome, attempt, closed, resumed, applied,
         applied_by) in requests:
        settings: dict[str, Any] = dict(policy or {})
        if outcome:
            settings['timeout_outcome'] = outcome
        if attempt:
            settings['suspend_attempt'] = attempt
        for key, value in (('closed', closed), ('resumed', resumed), ('applied', applied)):
            if value is not None:
                settings[key] = True
        if applied_by:
            settings['applied_by'] = applied_by
        waiter = conn.execute(
            sa.select(_waiters).where(_waiters.c.request_id == request_id)
        ).mappings().first()
        settings['waiter'] = {} if waiter is None else {
            'wake': waiter['wake'], 'pid': waiter['pid'], 'host': waiter['host'],
            'token': waiter['token'],
            'heartbeat_at': _when(waiter['heartbeat_at']).isoformat(),
        }
        for tier, position, ref in conn.execute(
            sa.select(_deliveries.c.tier, _deliveries.c.position, _deliveries.c.ref)
            .where(_deliveries.c.request_id == request_id)
        ).all():
            settings[f'delivery:{tier}:{position}'] = ref
        conn.execute(
            _requests.update().where(_requests.c.id == request_id).values(settings=settings)
        )
    op.drop_index('ix_wflo_approval_run', table_name='wflo_approval_requests')
    op.drop_index('ix_wflo_approval_unapplied', table_name='wflo_approval_requests')
    op.drop_index('ix_wflo_approval_due', table_name='wflo_approval_requests')
    for name in ('applied_by', 'applied_at', 'resumed_at', 'closed_at', 'suspend_attempt',
                 'timeout_outcome', 'policy'):
        op.drop_column('wflo_approval_requests', name)
    op.drop_table('wflo_approval_deliveries')
    op.drop_table('wflo_approval_waiters')
