"""mail through Microsoft 365: the outbox of queued messages and their attachments

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 23:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pbx365_mail_message',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('sender', sa.String(length=320), nullable=False),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('body_type', sa.String(length=8), nullable=False),
    sa.Column('save_to_sent_items', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('on_result', sa.String(length=255), nullable=True),
    sa.Column('reference', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pbx365_mail_message'))
    )
    with op.batch_alter_table('pbx365_mail_message', schema=None) as batch_op:
        batch_op.create_index('ix_pbx365_mail_message_tenant_created', ['tenant', 'created_at'], unique=False)

    op.create_table('pbx365_mail_attachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['pbx365_mail_message.id'],
                            name=op.f('fk_pbx365_mail_attachment_message_id_pbx365_mail_message'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pbx365_mail_attachment'))
    )
    with op.batch_alter_table('pbx365_mail_attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pbx365_mail_attachment_message_id'), ['message_id'], unique=False)


def downgrade():
    with op.batch_alter_table('pbx365_mail_attachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pbx365_mail_attachment_message_id'))

    op.drop_table('pbx365_mail_attachment')
    with op.batch_alter_table('pbx365_mail_message', schema=None) as batch_op:
        batch_op.drop_index('ix_pbx365_mail_message_tenant_created')

    op.drop_table('pbx365_mail_message')
