"""change notifications: the Graph subscriptions the extension created

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 23:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pbx365_subscription',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('resource', sa.String(length=512), nullable=False),
    sa.Column('notification_url', sa.String(length=1024), nullable=False),
    sa.Column('client_state_hash', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pbx365_subscription'))
    )
    with op.batch_alter_table('pbx365_subscription', schema=None) as batch_op:
        batch_op.create_index('ix_pbx365_subscription_tenant', ['tenant'], unique=False)


def downgrade():
    with op.batch_alter_table('pbx365_subscription', schema=None) as batch_op:
        batch_op.drop_index('ix_pbx365_subscription_tenant')
    op.drop_table('pbx365_subscription')
