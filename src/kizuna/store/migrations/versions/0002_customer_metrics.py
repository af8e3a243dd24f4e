"""customer metrics

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 04:22:21.645084
"""

import sqlalchemy as sa
from alembic import op

import kizuna.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "customer_metrics",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("as_of", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recency_days", sa.Float(), nullable=True),
        sa.Column("frequency", sa.Integer(), nullable=False),
        sa.Column("monetary", sa.Float(), nullable=False),
        sa.Column("r_score", sa.SmallInteger(), nullable=True),
        sa.Column("f_score", sa.SmallInteger(), nullable=True),
        sa.Column("m_score", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_segment", sa.String(length=32), nullable=True),
        sa.Column("p_alive", sa.Float(), nullable=True),
        sa.Column("expected_purchases", sa.Float(), nullable=True),
        sa.Column("clv", sa.Float(), nullable=True),
        sa.Column(
            "expected_next_order_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("computed_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "customer_id", name=op.f("pk_customer_metrics")),
    )
    with op.batch_alter_table("customer_metrics", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_metrics_workspace_id_rfm_segment"),
            ["workspace_id", "rfm_segment"],
            unique=False,
        )


def downgrade() -> None:

    with op.batch_alter_table("customer_metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_metrics_workspace_id_rfm_segment"))

    op.drop_table("customer_metrics")
