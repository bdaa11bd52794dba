"""seat count indexes

Counting an event's seats and looking for its waiting list walk the event's
registrations (``registration (event_key, status)``) and their people with one status
(``participant (registration_id, status)``): the work per registration stays the same
however many registrations other events hold. Plain (not unique) indexes: no existing
data can make them fail, and ``if_not_exists`` lets a half-made schema be finished.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_registration_event_key_status', 'registration', ['event_key', 'status'], unique=False,
                    if_not_exists=True)
    op.create_index('ix_participant_registration_id_status', 'participant', ['registration_id', 'status'],
                    unique=False, if_not_exists=True)


def downgrade() -> None:
    op.drop_index('ix_participant_registration_id_status', table_name='participant', if_exists=True)
    op.drop_index('ix_registration_event_key_status', table_name='registration', if_exists=True)
