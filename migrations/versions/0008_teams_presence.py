"""Teams presence: per-user state, both ways

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 07:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pbx365_teams_presence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('host_user_id', sa.String(length=64), nullable=False),
    sa.Column('object_id', sa.String(length=36), nullable=False),
    sa.Column('availability', sa.String(length=32), nullable=True),
    sa.Column('activity', sa.String(length=64), nullable=True),
    sa.Column('applied_status', sa.String(length=16), nullable=True),
    sa.Column('previous_status', sa.String(length=16), nullable=True),
    sa.Column('previous_source', sa.String(length=16), nullable=True),
    sa.Column('call_state', sa.String(length=16), nullable=False),
    sa.Column('call_changed_at', sa.DateTime(), nullable=True),
    sa.Column('session_expires_at', sa.DateTime(), nullable=True),
    sa.Column('push_error', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pbx365_teams_presence')),
    sa.UniqueConstraint('tenant', 'host_user_id', name='uq_pbx365_teams_presence_host_user')
    )
    op.create_index(op.f('ix_pbx365_teams_presence_session_expires_at'), 'pbx365_teams_presence',
                    ['session_expires_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_pbx365_teams_presence_session_expires_at'), table_name='pbx365_teams_presence')
    op.drop_table('pbx365_teams_presence')
