"""review resolution, per-participant consents, purge

The review queue records how an admin settled a message (resolution, when, a note and
the history of actions); retention marks purged messages and registrations and keeps
anonymous counts per event in ``purged_event``. Existing participants get the consents
of their registration's form (one set of consents per form, given for everyone on it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('purged_event',
    sa.Column('event_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('event_date', sa.Date(), nullable=True),
    sa.Column('first_purged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('last_purged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('messages', sa.Integer(), nullable=False),
    sa.Column('registrations', sa.Integer(), nullable=False),
    sa.Column('registrations_incomplete', sa.Integer(), nullable=False),
    sa.Column('registrations_cancelled', sa.Integer(), nullable=False),
    sa.Column('registrations_late', sa.Integer(), nullable=False),
    sa.Column('participants', sa.Integer(), nullable=False),
    sa.Column('participants_confirmed', sa.Integer(), nullable=False),
    sa.Column('participants_waitlisted', sa.Integer(), nullable=False),
    sa.Column('participants_cancelled', sa.Integer(), nullable=False),
    sa.Column('participants_late', sa.Integer(), nullable=False),
    sa.Column('consent_newsletter', sa.Integer(), nullable=False),
    sa.Column('workshops_json', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('by_date_json', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('event_key')
    )
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolution', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('resolution_note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True))
        batch_op.add_column(sa.Column('history', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('purged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_inbound_message_resolution'), ['resolution'], unique=False)

    with op.batch_alter_table('outbound_mail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('consent_data_processing', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('consent_newsletter', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute(
        "UPDATE participant SET"
        " consent_data_processing = (SELECT r.consent_data_processing FROM registration r"
        " WHERE r.id = participant.registration_id),"
        " consent_newsletter = (SELECT r.consent_newsletter FROM registration r"
        " WHERE r.id = participant.registration_id)"
    )

    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): a batch "move and copy" would drop
    # and recreate tables that others reference, which SQLite refuses with data in them.
    op.drop_column('registration', 'purged_at')
    op.drop_column('participant', 'consent_newsletter')
    op.drop_column('participant', 'consent_data_processing')
    op.drop_column('outbound_mail', 'purged_at')
    op.drop_index(op.f('ix_inbound_message_resolution'), table_name='inbound_message')
    for column in ('purged_at', 'history', 'resolution_note', 'resolved_at', 'resolution'):
        op.drop_column('inbound_message', column)
    op.drop_table('purged_event')
