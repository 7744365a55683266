"""user links

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 22:06:20.414840
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

def upgrade():
    op.create_table('pbx365_user_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('directory_id', sa.String(length=36), nullable=False),
    sa.Column('object_id', sa.String(length=36), nullable=False),
    sa.Column('host_user_id', sa.String(length=64), nullable=False),
    sa.Column('user_principal_name', sa.String(length=255), nullable=True),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=255), nullable=True),
    sa.Column('disabled_at', sa.DateTime(), nullable=True),
    sa.Column('fields_hash', sa.String(length=64), nullable=True),
    sa.Column('photo_etag', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pbx365_user_link')),
    sa.UniqueConstraint('tenant', 'directory_id', 'object_id', name='uq_pbx365_user_link_object'),
    sa.UniqueConstraint('tenant', 'host_user_id', name='uq_pbx365_user_link_host_user')
    )

def downgrade():
    op.drop_table('pbx365_user_link')
