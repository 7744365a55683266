"""Users' phones: the call state the demo simulates (Teams presence)

Revision ID: 0002_call_state
Revises: 0001_initial
Create Date: 2026-12-07 07:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = '0002_call_state'
down_revision = '0001_initial'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('call_state', sa.String(length=16), nullable=False, server_default='idle'))


def downgrade():
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('call_state')
