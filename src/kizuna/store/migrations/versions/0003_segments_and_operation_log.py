"""segments and operation log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 05:48:11.972855
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import kizuna.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operation_log",
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=True),
        sa.Column("at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_operation_log")),
    )
    with op.batch_alter_table("operation_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_operation_log_workspace_id_at"), ["workspace_id", "at"], unique=False
        )

    op.create_table(
        "segment_members",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("segment_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("entered_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("exited_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint(
            "workspace_id", "segment_id", "customer_id", name=op.f("pk_segment_members")
        ),
    )
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_segment_members_workspace_id_customer_id"),
            ["workspace_id", "customer_id"],
            unique=False,
        )

    op.create_table(
        "segment_queue",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("queued_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column(
            "causes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("queued_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "queued_id", name=op.f("pk_segment_queue")),
    )
    with op.batch_alter_table("segment_queue", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_segment_queue_queued_id"), ["queued_id"], unique=False)
    op.create_table(
        "segment_signals",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("segment_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.CheckConstraint("kind in ('entered', 'exited')", name=op.f("ck_segment_signals_kind")),
        sa.PrimaryKeyConstraint(
            "workspace_id", "segment_id", "customer_id", "at", name=op.f("pk_segment_signals")
        ),
    )
    with op.batch_alter_table("segment_signals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_segment_signals_workspace_id_at"), ["workspace_id", "at"], unique=False
        )

    op.create_table(
        "segments",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("segment_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column(
            "definition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "depends_on",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("archived_at", kizuna.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("workspace_id", "segment_id", name=op.f("pk_segments")),
        sa.UniqueConstraint("workspace_id", "key", name=op.f("uq_segments_workspace_id_key")),
    )


def downgrade() -> None:
    op.drop_table("segments")
    with op.batch_alter_table("segment_signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_signals_workspace_id_at"))

    op.drop_table("segment_signals")
    with op.batch_alter_table("segment_queue", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_queue_queued_id"))

    op.drop_table("segment_queue")
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_segment_members_workspace_id_customer_id"))

    op.drop_table("segment_members")
    with op.batch_alter_table("operation_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_operation_log_workspace_id_at"))

    op.drop_table("operation_log")
