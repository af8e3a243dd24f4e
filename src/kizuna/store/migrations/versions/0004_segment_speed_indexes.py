"""segment speed indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 08:50:00.000000

Orders get one index that answers the segment leaves on purchases by itself: a
customer's orders in a window with what decides a purchase (status, total,
refunded) and the channel, so "orders in the last 90 days", counts, totals and
last order dates read the index alone (PostgreSQL: an index-only scan; SQLite: a
covering index). It replaces ``(workspace_id, customer_id, ordered_at)``, its prefix.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = ["workspace_id", "customer_id", "ordered_at", "status", "total", "refunded", "channel"]


def upgrade() -> None:
    op.create_index("ix_orders_customer_purchases", "orders", _COLUMNS, unique=False)
    op.drop_index("ix_orders_workspace_id_customer_id_ordered_at", table_name="orders")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("ANALYZE orders"))  # the planner's statistics for the new index


def downgrade() -> None:
    op.create_index(
        "ix_orders_workspace_id_customer_id_ordered_at",
        "orders",
        ["workspace_id", "customer_id", "ordered_at"],
        unique=False,
    )
    op.drop_index("ix_orders_customer_purchases", table_name="orders")
