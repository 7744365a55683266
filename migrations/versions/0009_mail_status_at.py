"""mail through Microsoft 365: when each message entered its status (recovery of lost jobs and dead workers)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 16:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('pbx365_mail_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_pbx365_mail_message_status_at', ['status', 'status_at'], unique=False)
    # Messages already there count as having entered their status when they were created.
    op.execute("UPDATE pbx365_mail_message SET status_at = COALESCE(finished_at, created_at)")


def downgrade():
    with op.batch_alter_table('pbx365_mail_message', schema=None) as batch_op:
        batch_op.drop_index('ix_pbx365_mail_message_status_at')
        batch_op.drop_column('status_at')
