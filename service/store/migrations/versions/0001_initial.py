"""audit trail, feedback, snoozes and seen tokens

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service_id", sa.String(length=200), nullable=False),
        sa.Column("card_uuid", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_suggestions", sa.JSON(), nullable=False),
        sa.Column("reason_system", sa.String(length=300), nullable=True),
        sa.Column("reason_code", sa.String(length=100), nullable=True),
        sa.Column("reason_display", sa.String(length=300), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("user_id", sa.String(length=300), nullable=True),
        sa.Column("tenant", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_feedback_dedup_key")),
    )
    op.create_index(op.f("ix_feedback_card_uuid"), "feedback", ["card_uuid"], unique=False)
    op.create_table(
        "invocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service_id", sa.String(length=200), nullable=False),
        sa.Column("hook", sa.String(length=200), nullable=False),
        sa.Column("hook_instance", sa.String(length=200), nullable=False),
        sa.Column("ruleset_version", sa.String(length=100), nullable=False),
        sa.Column("evaluation_ms", sa.Float(), nullable=False),
        sa.Column("patient_id", sa.String(length=200), nullable=True),
        sa.Column("patient_key", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.String(length=300), nullable=True),
        sa.Column("tenant", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invocations")),
    )
    op.create_index(op.f("ix_invocations_at"), "invocations", ["at"], unique=False)
    op.create_table(
        "seen_tokens",
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_seen_tokens")),
    )
    op.create_index(op.f("ix_seen_tokens_expires_at"), "seen_tokens", ["expires_at"], unique=False)
    op.create_table(
        "snoozes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("card_uuid", sa.String(length=100), nullable=False),
        sa.Column("reason_code", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snoozes")),
    )
    op.create_index("ix_snoozes_patient_key_until", "snoozes", ["patient_key", "until"], unique=False)
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invocation_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=False),
        sa.Column("indicator", sa.String(length=20), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("card_uuid", sa.String(length=100), nullable=True),
        sa.Column("suggestion_uuids", sa.JSON(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invocation_id"], ["invocations.id"], name=op.f("fk_decisions_invocation_id_invocations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("card_uuid", name=op.f("uq_decisions_card_uuid")),
    )
    op.create_index(op.f("ix_decisions_invocation_id"), "decisions", ["invocation_id"], unique=False)
    op.create_index(op.f("ix_decisions_rule_id"), "decisions", ["rule_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_decisions_rule_id"), table_name="decisions")
    op.drop_index(op.f("ix_decisions_invocation_id"), table_name="decisions")
    op.drop_table("decisions")
    op.drop_index("ix_snoozes_patient_key_until", table_name="snoozes")
    op.drop_table("snoozes")
    op.drop_index(op.f("ix_seen_tokens_expires_at"), table_name="seen_tokens")
    op.drop_table("seen_tokens")
    op.drop_index(op.f("ix_invocations_at"), table_name="invocations")
    op.drop_table("invocations")
    op.drop_index(op.f("ix_feedback_card_uuid"), table_name="feedback")
    op.drop_table("feedback")
