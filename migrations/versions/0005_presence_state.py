"""calendar presence: per-user state

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pbx365_presence_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('host_user_id', sa.String(length=64), nullable=False),
    sa.Column('object_id', sa.String(length=36), nullable=False),
    sa.Column('applied_status', sa.String(length=16), nullable=True),
    sa.Column('event_id', sa.Text(), nullable=True),
    sa.Column('event_subject', sa.String(length=255), nullable=True),
    sa.Column('event_end', sa.DateTime(), nullable=True),
    sa.Column('previous_status', sa.String(length=16), nullable=True),
    sa.Column('previous_source', sa.String(length=16), nullable=True),
    sa.Column('ignored_event_ids', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pbx365_presence_state')),
    sa.UniqueConstraint('tenant', 'host_user_id', name='uq_pbx365_presence_state_host_user')
    )


def downgrade():
    op.drop_table('pbx365_presence_state')
