"""privacy: the record of data-subject requests

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 11:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import kizuna.store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_UTC = kizuna.store.types.UTCDateTime(timezone=True)
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "privacy_requests",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("completed_at", _UTC, nullable=True),
        sa.Column("details", _JSON, nullable=False),
        sa.CheckConstraint(
            "kind in ('disclose', 'correct', 'stop', 'erase')",
            name=op.f("ck_privacy_requests_kind"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", "request_id", name=op.f("pk_privacy_requests")),
    )
    with op.batch_alter_table("privacy_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_privacy_requests_workspace_id_customer_id"),
            ["workspace_id", "customer_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("privacy_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_privacy_requests_workspace_id_customer_id"))
    op.drop_table("privacy_requests")
