"""contacts sync: per-folder delta state

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pbx365_contact_folder_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('mailbox', sa.String(length=255), nullable=False),
    sa.Column('host_user_id', sa.String(length=64), nullable=True),
    sa.Column('folder_id', sa.String(length=255), nullable=False),
    sa.Column('delta_link', sa.Text(), nullable=True),
    sa.Column('contact_ids', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pbx365_contact_folder_state')),
    sa.UniqueConstraint('tenant', 'mailbox', 'folder_id', name='uq_pbx365_contact_folder_state_folder')
    )


def downgrade():
    op.drop_table('pbx365_contact_folder_state')
