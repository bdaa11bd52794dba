"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-27
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger(__name__)
TABLES = {
    'inbound_message', 'mailbox_state', 'attachment', 'registration', 'outbound_mail',
    'participant', 'registration_version',
}


def upgrade() -> None:
    # Idempotent: mailbot before issue 11 ran this statement by statement on SQLite, so
    # a kill during the first start left some of these tables and indexes and an empty
    # alembic_version. IF NOT EXISTS finishes such a half-made schema (each CREATE is
    # atomic, so what exists is complete) instead of failing on every start.
    existing = set(sa.inspect(op.get_bind()).get_table_names()) & TABLES
    if existing:
        log.warning("finishing a half-made initial schema (found: %s)", ", ".join(sorted(existing)))
    op.create_table('inbound_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=998), nullable=True),
    sa.Column('raw_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('folder', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=True),
    sa.Column('uid', sa.BigInteger(), nullable=True),
    sa.Column('from_addr', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('from_name', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('filed', sa.Boolean(), nullable=False),
    sa.Column('times_seen', sa.Integer(), nullable=False),
    sa.Column('warnings', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key'),
    if_not_exists=True,
    )
    op.create_index(op.f('ix_inbound_message_from_addr'), 'inbound_message', ['from_addr'], unique=False, if_not_exists=True)
    op.create_index(op.f('ix_inbound_message_message_id'), 'inbound_message', ['message_id'], unique=False, if_not_exists=True)
    op.create_index(op.f('ix_inbound_message_outcome'), 'inbound_message', ['outcome'], unique=False, if_not_exists=True)
    op.create_index(op.f('ix_inbound_message_ref'), 'inbound_message', ['ref'], unique=False, if_not_exists=True)

    op.create_table('mailbox_state',
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=True),
    sa.Column('last_uid', sa.BigInteger(), nullable=True),
    sa.Column('last_check_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.PrimaryKeyConstraint('source'),
    if_not_exists=True,
    )
    op.create_table('attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inbound_id', sa.Integer(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('parse_status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('parse_format', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('parse_method', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('parse_reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('parse_json', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['inbound_id'], ['inbound_message.id'], ),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index(op.f('ix_attachment_inbound_id'), 'attachment', ['inbound_id'], unique=False, if_not_exists=True)

    op.create_table('registration',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('event_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('institution_name', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('institution_address', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('institution_phone', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('institution_email', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('workshops', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('remarks', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('consent_data_processing', sa.Boolean(), nullable=False),
    sa.Column('consent_newsletter', sa.Boolean(), nullable=False),
    sa.Column('sender_email', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('problems_json', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('source_inbound_id', sa.Integer(), nullable=False),
    sa.Column('source_attachment_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['source_attachment_id'], ['attachment.id'], ),
    sa.ForeignKeyConstraint(['source_inbound_id'], ['inbound_message.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code'),
    if_not_exists=True,
    )
    op.create_index(op.f('ix_registration_event_key'), 'registration', ['event_key'], unique=False, if_not_exists=True)
    op.create_index(op.f('ix_registration_sender_email'), 'registration', ['sender_email'], unique=False, if_not_exists=True)

    op.create_table('outbound_mail',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('to_addr', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('inbound_id', sa.Integer(), nullable=True),
    sa.Column('registration_id', sa.Integer(), nullable=True),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('envelope_to', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('claimed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['inbound_id'], ['inbound_message.id'], ),
    sa.ForeignKeyConstraint(['registration_id'], ['registration.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedupe_key'),
    if_not_exists=True,
    )
    op.create_index(op.f('ix_outbound_mail_created_at'), 'outbound_mail', ['created_at'], unique=False, if_not_exists=True)
    op.create_index(op.f('ix_outbound_mail_kind'), 'outbound_mail', ['kind'], unique=False, if_not_exists=True)
    op.create_index(op.f('ix_outbound_mail_status'), 'outbound_mail', ['status'], unique=False, if_not_exists=True)
    op.create_index(op.f('ix_outbound_mail_to_addr'), 'outbound_mail', ['to_addr'], unique=False, if_not_exists=True)

    op.create_table('participant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('full_name', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('job_title', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.ForeignKeyConstraint(['registration_id'], ['registration.id'], ),
    sa.PrimaryKeyConstraint('id'),
    if_not_exists=True,
    )
    op.create_index(op.f('ix_participant_email'), 'participant', ['email'], unique=False, if_not_exists=True)
    op.create_index(op.f('ix_participant_registration_id'), 'participant', ['registration_id'], unique=False, if_not_exists=True)

    op.create_table('registration_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('registration_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('snapshot_json', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('replaced_by_inbound_id', sa.Integer(), nullable=False),
    sa.Column('replaced_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['registration_id'], ['registration.id'], ),
    sa.ForeignKeyConstraint(['replaced_by_inbound_id'], ['inbound_message.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('registration_id', 'version'),
    if_not_exists=True,
    )
    op.create_index(op.f('ix_registration_version_registration_id'), 'registration_version', ['registration_id'], unique=False, if_not_exists=True)



def downgrade() -> None:
    with op.batch_alter_table('registration_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registration_version_registration_id'))

    op.drop_table('registration_version')
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_participant_registration_id'))
        batch_op.drop_index(batch_op.f('ix_participant_email'))

    op.drop_table('participant')
    with op.batch_alter_table('outbound_mail', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_mail_to_addr'))
        batch_op.drop_index(batch_op.f('ix_outbound_mail_status'))
        batch_op.drop_index(batch_op.f('ix_outbound_mail_kind'))
        batch_op.drop_index(batch_op.f('ix_outbound_mail_created_at'))

    op.drop_table('outbound_mail')
    with op.batch_alter_table('registration', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registration_sender_email'))
        batch_op.drop_index(batch_op.f('ix_registration_event_key'))

    op.drop_table('registration')
    with op.batch_alter_table('attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachment_inbound_id'))

    op.drop_table('attachment')
    op.drop_table('mailbox_state')
    with op.batch_alter_table('inbound_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_message_ref'))
        batch_op.drop_index(batch_op.f('ix_inbound_message_outcome'))
        batch_op.drop_index(batch_op.f('ix_inbound_message_message_id'))
        batch_op.drop_index(batch_op.f('ix_inbound_message_from_addr'))

    op.drop_table('inbound_message')
