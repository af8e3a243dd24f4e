"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 03:24:30.657186
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import kizuna.store.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "carts",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("cart_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column(
            "items",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=True),
        sa.Column("checkout_started_at", kizuna.store.types.UTCDateTime(), nullable=True),
        sa.Column("updated_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "customer_id", "cart_id", name=op.f("pk_carts")),
    )
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_carts_workspace_id_status_updated_at"),
            ["workspace_id", "status", "updated_at"],
            unique=False,
        )

    op.create_table(
        "consent_events",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("consent_event_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=True),
        sa.Column("wording", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("address_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("recorded_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "customer_id", "consent_event_id", name=op.f("pk_consent_events")
        ),
    )
    op.create_table(
        "consents",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("changed_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "customer_id", "channel", name=op.f("pk_consents")),
    )
    op.create_table(
        "customer_merges",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("merge_id", sa.Uuid(), nullable=False),
        sa.Column("from_customer_id", sa.Uuid(), nullable=False),
        sa.Column("into_customer_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column(
            "moved",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("merged_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "merge_id", name=op.f("pk_customer_merges")),
    )
    with op.batch_alter_table("customer_merges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_merges_workspace_id_into_customer_id"),
            ["workspace_id", "into_customer_id"],
            unique=False,
        )

    op.create_table(
        "customers",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("shop_customer_id", sa.String(length=128), nullable=True),
        sa.Column("merged_into", sa.Uuid(), nullable=True),
        sa.Column("email_enc", sa.LargeBinary(), nullable=True),
        sa.Column("email_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("phone_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("last_name_enc", sa.LargeBinary(), nullable=True),
        sa.Column("first_name_enc", sa.LargeBinary(), nullable=True),
        sa.Column("last_name_kana_enc", sa.LargeBinary(), nullable=True),
        sa.Column("first_name_kana_enc", sa.LargeBinary(), nullable=True),
        sa.Column("postal_code_enc", sa.LargeBinary(), nullable=True),
        sa.Column("address_enc", sa.LargeBinary(), nullable=True),
        sa.Column("birthday_enc", sa.LargeBinary(), nullable=True),
        sa.Column("birth_md", sa.String(length=5), nullable=True),
        sa.Column("gender", sa.String(length=16), nullable=True),
        sa.Column("prefecture", sa.String(length=16), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("membership_rank", sa.String(length=64), nullable=True),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("registered_at", kizuna.store.types.UTCDateTime(), nullable=True),
        sa.Column("first_seen_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "customer_id", name=op.f("pk_customers")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customers_workspace_id_email_hash"),
            ["workspace_id", "email_hash"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_customers_workspace_id_prefecture"),
            ["workspace_id", "prefecture"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_customers_workspace_id_shop_customer_id"),
            ["workspace_id", "shop_customer_id"],
            unique=False,
        )

    op.create_table(
        "events",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column(
            "properties",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("anonymous_id", sa.String(length=200), nullable=True),
        sa.Column("user_id", sa.String(length=200), nullable=True),
        sa.Column("occurred_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.Column("received_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "customer_id", "event_id", name=op.f("pk_events")),
        sa.UniqueConstraint(
            "workspace_id", "message_id", name=op.f("uq_events_workspace_id_message_id")
        ),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_events_workspace_id_customer_id_occurred_at"),
            ["workspace_id", "customer_id", "occurred_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_events_workspace_id_name_occurred_at"),
            ["workspace_id", "name", "occurred_at"],
            unique=False,
        )

    op.create_table(
        "identities",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("value_enc", sa.LargeBinary(), nullable=False),
        sa.Column("first_seen_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "kind", "value_hash", name=op.f("pk_identities")),
    )
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identities_workspace_id_customer_id"),
            ["workspace_id", "customer_id"],
            unique=False,
        )

    op.create_table(
        "order_items",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=True),
        sa.Column("product_name", sa.String(length=300), nullable=True),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("brand", sa.String(length=200), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.Float(), nullable=False),
        sa.Column("discount", sa.Float(), nullable=False),
        sa.Column("coupon", sa.String(length=100), nullable=True),
        sa.Column("is_sale", sa.Boolean(), nullable=False),
        sa.Column("returned_quantity", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "order_id", "line_no", name=op.f("pk_order_items")),
    )
    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_items_workspace_id_customer_id"),
            ["workspace_id", "customer_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_order_items_workspace_id_sku"), ["workspace_id", "sku"], unique=False
        )

    op.create_table(
        "orders",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("ordered_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("subtotal", sa.Float(), nullable=False),
        sa.Column("discount", sa.Float(), nullable=False),
        sa.Column("shipping", sa.Float(), nullable=False),
        sa.Column("tax", sa.Float(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("refunded", sa.Float(), nullable=False),
        sa.Column("coupon", sa.String(length=100), nullable=True),
        sa.Column("store_id", sa.String(length=100), nullable=True),
        sa.Column("cancelled_at", kizuna.store.types.UTCDateTime(), nullable=True),
        sa.Column("returned_at", kizuna.store.types.UTCDateTime(), nullable=True),
        sa.Column("updated_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "order_id", name=op.f("pk_orders")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_orders_workspace_id_customer_id_ordered_at"),
            ["workspace_id", "customer_id", "ordered_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_orders_workspace_id_ordered_at"),
            ["workspace_id", "ordered_at"],
            unique=False,
        )

    op.create_table(
        "products",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("brand", sa.String(length=200), nullable=True),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("stock", sa.Integer(), nullable=True),
        sa.Column("url", sa.String(length=1000), nullable=True),
        sa.Column("image_url", sa.String(length=1000), nullable=True),
        sa.Column(
            "attributes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "sku", name=op.f("pk_products")),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_products_workspace_id_product_id"),
            ["workspace_id", "product_id"],
            unique=False,
        )

    op.create_table(
        "subscriptions",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("plan", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("interval_days", sa.Integer(), nullable=False),
        sa.Column("started_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.Column("renewed_at", kizuna.store.types.UTCDateTime(), nullable=True),
        sa.Column("next_renewal_at", kizuna.store.types.UTCDateTime(), nullable=True),
        sa.Column("cancelled_at", kizuna.store.types.UTCDateTime(), nullable=True),
        sa.Column("updated_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "subscription_id", name=op.f("pk_subscriptions")),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscriptions_workspace_id_customer_id"),
            ["workspace_id", "customer_id"],
            unique=False,
        )

    op.create_table(
        "suppressions",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "channel", "address_hash", name=op.f("pk_suppressions")
        ),
    )
    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_suppressions_workspace_id_customer_id"),
            ["workspace_id", "customer_id"],
            unique=False,
        )

    op.create_table(
        "workspaces",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("environment", sa.String(length=16), nullable=False),
        sa.Column("brand", sa.String(length=64), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "environment in ('production', 'development')", name=op.f("ck_workspaces_environment")
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_workspaces")),
        sa.UniqueConstraint("slug", name=op.f("uq_workspaces_slug")),
    )
    op.create_table(
        "write_keys",
        sa.Column("key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", kizuna.store.types.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", kizuna.store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_write_keys")),
    )
    with op.batch_alter_table("write_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_write_keys_workspace_id"), ["workspace_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("write_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_write_keys_workspace_id"))

    op.drop_table("write_keys")
    op.drop_table("workspaces")
    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_suppressions_workspace_id_customer_id"))

    op.drop_table("suppressions")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriptions_workspace_id_customer_id"))

    op.drop_table("subscriptions")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_products_workspace_id_product_id"))

    op.drop_table("products")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_workspace_id_ordered_at"))
        batch_op.drop_index(batch_op.f("ix_orders_workspace_id_customer_id_ordered_at"))

    op.drop_table("orders")
    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_items_workspace_id_sku"))
        batch_op.drop_index(batch_op.f("ix_order_items_workspace_id_customer_id"))

    op.drop_table("order_items")
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identities_workspace_id_customer_id"))

    op.drop_table("identities")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_workspace_id_name_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_events_workspace_id_customer_id_occurred_at"))

    op.drop_table("events")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customers_workspace_id_shop_customer_id"))
        batch_op.drop_index(batch_op.f("ix_customers_workspace_id_prefecture"))
        batch_op.drop_index(batch_op.f("ix_customers_workspace_id_email_hash"))

    op.drop_table("customers")
    with op.batch_alter_table("customer_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_merges_workspace_id_into_customer_id"))

    op.drop_table("customer_merges")
    op.drop_table("consents")
    op.drop_table("consent_events")
    with op.batch_alter_table("carts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_carts_workspace_id_status_updated_at"))

    op.drop_table("carts")
