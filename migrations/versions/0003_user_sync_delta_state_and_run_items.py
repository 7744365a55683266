"""user sync delta state and run items

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 22:14:05.856490
"""
from alembic import op
import sqlalchemy as sa



revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pbx365_delta_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('directory_id', sa.String(length=36), nullable=True),
    sa.Column('delta_link', sa.Text(), nullable=True),
    sa.Column('options_hash', sa.String(length=64), nullable=True),
    sa.Column('scope_hash', sa.String(length=64), nullable=True),
    sa.Column('applied', sa.JSON(), nullable=False),
    sa.Column('full_sync_at', sa.DateTime(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pbx365_delta_state')),
    sa.UniqueConstraint('tenant', 'kind', name='uq_pbx365_delta_state_tenant_kind')
    )
    op.create_table('pbx365_sync_run_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('object_id', sa.String(length=36), nullable=True),
    sa.Column('user_principal_name', sa.String(length=255), nullable=True),
    sa.Column('display_name', sa.String(length=255), nullable=True),
    sa.Column('extension', sa.String(length=32), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pbx365_sync_run_item'))
    )
    with op.batch_alter_table('pbx365_sync_run_item', schema=None) as batch_op:
        batch_op.create_index('ix_pbx365_sync_run_item_run_action', ['run_id', 'action'], unique=False)



def downgrade():
    with op.batch_alter_table('pbx365_sync_run_item', schema=None) as batch_op:
        batch_op.drop_index('ix_pbx365_sync_run_item_run_action')

    op.drop_table('pbx365_sync_run_item')
    op.drop_table('pbx365_delta_state')
