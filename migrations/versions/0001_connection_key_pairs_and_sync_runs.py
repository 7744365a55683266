"""connection, key pairs and sync runs

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 22:01:44.363049
"""
from alembic import op
import sqlalchemy as sa



revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pbx365_key_pair',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('sha1', sa.String(length=40), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('certificate_pem', sa.Text(), nullable=False),
    sa.Column('private_key_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('not_before', sa.DateTime(), nullable=False),
    sa.Column('not_after', sa.DateTime(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('expiry_notices', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pbx365_key_pair')),
    sa.UniqueConstraint('tenant', 'sha256', name='uq_pbx365_key_pair_tenant_sha256')
    )
    with op.batch_alter_table('pbx365_key_pair', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pbx365_key_pair_tenant'), ['tenant'], unique=False)

    op.create_table('pbx365_sync_run',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('progress', sa.JSON(), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pbx365_sync_run'))
    )
    with op.batch_alter_table('pbx365_sync_run', schema=None) as batch_op:
        batch_op.create_index('ix_pbx365_sync_run_tenant_created', ['tenant', 'created_at'], unique=False)

    op.create_table('pbx365_tenant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=True),
    sa.Column('directory_id', sa.String(length=36), nullable=True),
    sa.Column('cloud', sa.String(length=16), nullable=False),
    sa.Column('login_url', sa.String(length=255), nullable=True),
    sa.Column('graph_url', sa.String(length=255), nullable=True),
    sa.Column('ca_bundle', sa.String(length=1024), nullable=True),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('verified_redirect_uris', sa.JSON(), nullable=False),
    sa.Column('consent_granted_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pbx365_tenant')),
    sa.UniqueConstraint('tenant', name=op.f('uq_pbx365_tenant_tenant'))
    )


def downgrade():
    op.drop_table('pbx365_tenant')
    with op.batch_alter_table('pbx365_sync_run', schema=None) as batch_op:
        batch_op.drop_index('ix_pbx365_sync_run_tenant_created')

    op.drop_table('pbx365_sync_run')
    with op.batch_alter_table('pbx365_key_pair', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pbx365_key_pair_tenant'))

    op.drop_table('pbx365_key_pair')
