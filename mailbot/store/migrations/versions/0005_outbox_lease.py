"""outbox claims and leases

Several processes may deliver from one store (the daemon plus a hand-run ``mailbot
remind``): a row is claimed by a conditional UPDATE that names the claiming process
(``claimed_by``) and gives it a lease on the database's clock (``lease_until``); an
expired lease puts the row back in the queue. Rows already ``sending`` get a lease of
15 minutes from now, the grace the sweeper gave them before.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbound_mail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True))
        batch_op.add_column(sa.Column('lease_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    if op.get_bind().dialect.name == 'sqlite':
        # The layout SQLAlchemy stores datetimes in (UTC), so text comparison orders them.
        lease = "strftime('%Y-%m-%d %H:%M:%f000', 'now', '+900 seconds')"
    else:
        lease = "now() + interval '15 minutes'"
    op.execute(f"UPDATE outbound_mail SET lease_until = {lease} WHERE status = 'sending'")


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+), as in 0003/0004.
    for column in ('lease_until', 'claimed_by'):
        op.drop_column('outbound_mail', column)
