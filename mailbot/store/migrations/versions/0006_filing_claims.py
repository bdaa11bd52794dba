"""filing claims

A process files (MOVEs) a mailbox message only after claiming it in the database, so a
daemon and a hand-run ``mailbot run --once`` never both move one message. One row per
message place (source, UIDVALIDITY:UID or Maildir key); a claim whose holder vanished
is taken over once its lease has run out on the database's clock.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'filing_claim',
        sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column('lease_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('filed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('source', 'ref'),
    )


def downgrade() -> None:
    op.drop_table('filing_claim')
