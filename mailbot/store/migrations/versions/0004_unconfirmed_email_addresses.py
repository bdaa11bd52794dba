"""unconfirmed e-mail addresses

A participant's address the form reader doubted (``low_confidence``: a scan, an address
that does not match the person's name) gets no mail of its own until it is confirmed:
the participant row records that state, what was read, the reader's suggestion and note,
and when and how the doubt was settled. Existing participants were never in doubt.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_check', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column('email_as_read', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('email_suggestion', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('email_doubt_note', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('email_settled_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('email_settled_by', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True))
        batch_op.create_index(batch_op.f('ix_participant_email_check'), ['email_check'], unique=False)


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+), as in 0003: a batch "move and copy"
    # would recreate a table others reference.
    op.drop_index(op.f('ix_participant_email_check'), table_name='participant')
    for column in (
        'email_settled_by', 'email_settled_at', 'email_doubt_note', 'email_suggestion', 'email_as_read', 'email_check'
    ):
        op.drop_column('participant', column)
