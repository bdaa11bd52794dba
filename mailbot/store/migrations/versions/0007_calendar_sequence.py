"""calendar sequence per address

One row per (event, address) that was sent a calendar file: the SEQUENCE and METHOD of
the last one. A later file to that address (cancellation, re-registration, reminder,
change) takes the next number, so calendar clients always apply it. Existing
installations start with no rows: the first file after the upgrade is numbered above
the event's announced SEQUENCE (event_state.sequence), which every earlier file to any
address carried at most.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'calendar_sequence',
        sa.Column('event_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column('sequence', sa.Integer(), nullable=False),
        sa.Column('method', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('event_key', 'address'),
    )


def downgrade() -> None:
    op.drop_table('calendar_sequence')
