"""seats, waiting list, bounces, event state

Existing participants keep their seats (status 'confirmed') and take their
registration's creation time as the moment they registered.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('address_status',
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('bouncing', sa.Boolean(), nullable=False),
    sa.Column('bounce_count', sa.Integer(), nullable=False),
    sa.Column('last_bounce_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_bounce_reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('auto_reply_count', sa.Integer(), nullable=False),
    sa.Column('last_auto_reply_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('address')
    )
    op.create_table('event_state',
    sa.Column('event_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('snapshot_json', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('event_key')
    )
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False, server_default='confirmed'))
        batch_op.add_column(sa.Column('registered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('status_changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_participant_status'), ['status'], unique=False)
    op.execute(
        "UPDATE participant SET registered_at = (SELECT created_at FROM registration"
        " WHERE registration.id = participant.registration_id)"
    )
    op.execute("UPDATE participant SET status_changed_at = registered_at")
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.alter_column('registered_at', existing_type=sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False)
        batch_op.alter_column('status_changed_at', existing_type=sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False)

    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancelled_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.drop_column('cancelled_at')

    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_participant_status'))
        batch_op.drop_column('status_changed_at')
        batch_op.drop_column('registered_at')
        batch_op.drop_column('status')

    op.drop_table('event_state')
    op.drop_table('address_status')
