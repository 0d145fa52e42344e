"""idempotent audit key, client scope of cards and snoozes, offered override reasons

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invocations") as batch:
        batch.add_column(sa.Column("audit_key", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("issuer", sa.String(length=300), nullable=True))
        batch.create_unique_constraint(op.f("uq_invocations_audit_key"), ["audit_key"])
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("override_reasons", sa.JSON(), nullable=True))
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("issuer", sa.String(length=300), nullable=True))
    with op.batch_alter_table("snoozes") as batch:
        batch.add_column(sa.Column("issuer", sa.String(length=300), server_default="", nullable=False))
        batch.add_column(sa.Column("tenant", sa.String(length=200), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("snoozes") as batch:
        batch.drop_column("tenant")
        batch.drop_column("issuer")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("issuer")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("override_reasons")
    with op.batch_alter_table("invocations") as batch:
        batch.drop_constraint(op.f("uq_invocations_audit_key"), type_="unique")
        batch.drop_column("issuer")
        batch.drop_column("audit_key")
