"""The schema: every customer-owned table is keyed by ``(workspace_id, customer_id)``.

Rules that keep the schema distributable by customer (see ARCHITECTURE.md): no
foreign keys across customers, no global sequences (ids are time-ordered UUIDs
or the shop's own ids), joins only on ``(workspace_id, customer_id)``.

Personal data (email, phone, names, kana, postal code, address, birthday) is
stored only as AES-GCM ciphertext (``*_enc``) plus, where it is looked up, a
keyed hash (``*_hash``). Prefecture, city, gender and the birthday's month-day
stay in clear because segments filter on them in SQL; alone they identify no one.
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.store.types import JSONDoc, UTCDateTime

__all__ = [
    "carts",
    "channel_providers",
    "consent_events",
    "consents",
    "content_blocks",
    "customer_merges",
    "customer_metrics",
    "customers",
    "events",
    "identities",
    "messages",
    "metadata",
    "operation_log",
    "order_items",
    "orders",
    "preferences",
    "products",
    "scenario_cursors",
    "scenario_inbox",
    "scenario_runs",
    "scenario_steps",
    "scenario_versions",
    "scenarios",
    "seed_addresses",
    "segment_members",
    "segment_queue",
    "segment_signals",
    "segments",
    "subscriptions",
    "suppressions",
    "templates",
    "workspaces",
    "write_keys",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = sa.MetaData(naming_convention=NAMING)

Money = sa.Float  # JPY amounts are whole numbers; doubles hold them exactly up to 2**53


def _ws() -> sa.Column[object]:
    return sa.Column("workspace_id", sa.Uuid, primary_key=True)


def _customer() -> sa.Column[object]:
    return sa.Column("customer_id", sa.Uuid, nullable=False)


workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("workspace_id", sa.Uuid, primary_key=True),
    sa.Column("slug", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("environment", sa.String(16), nullable=False),  # production | development
    sa.Column("brand", sa.String(64), nullable=False),  # groups a brand's environments
    sa.Column("time_zone", sa.String(64), nullable=False),
    sa.Column("settings", JSONDoc, nullable=False, default=dict),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("environment in ('production', 'development')", name="environment"),
)

write_keys = sa.Table(
    "write_keys",
    metadata,
    # IMPORTANT: only a SHA-256 of the key is stored; the key is shown once at creation.
    sa.Column("key_hash", sa.LargeBinary(32), primary_key=True),
    sa.Column("workspace_id", sa.Uuid, nullable=False, index=True),
    sa.Column("prefix", sa.String(12), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
)

customers = sa.Table(
    "customers",
    metadata,
    _ws(),
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    sa.Column("shop_customer_id", sa.String(128)),  # the shop's own id, when known
    sa.Column("merged_into", sa.Uuid),  # set on the losing side of a merge
    sa.Column("email_enc", sa.LargeBinary),
    sa.Column("email_hash", sa.LargeBinary(32)),
    sa.Column("phone_enc", sa.LargeBinary),
    sa.Column("phone_hash", sa.LargeBinary(32)),
    sa.Column("last_name_enc", sa.LargeBinary),
    sa.Column("first_name_enc", sa.LargeBinary),
    sa.Column("last_name_kana_enc", sa.LargeBinary),
    sa.Column("first_name_kana_enc", sa.LargeBinary),
    sa.Column("postal_code_enc", sa.LargeBinary),
    sa.Column("address_enc", sa.LargeBinary),
    sa.Column("birthday_enc", sa.LargeBinary),
    sa.Column("birth_md", sa.String(5)),  # "MM-DD", for birthday scenarios
    sa.Column("gender", sa.String(16)),
    sa.Column("prefecture", sa.String(16)),
    sa.Column("city", sa.String(100)),
    sa.Column("membership_rank", sa.String(64)),
    sa.Column("attributes", JSONDoc, nullable=False, default=dict),
    sa.Column("registered_at", UTCDateTime),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "workspace_id", "shop_customer_id"),
    sa.Index(None, "workspace_id", "email_hash"),
    sa.Index(None, "workspace_id", "prefecture"),
)

identities = sa.Table(
    "identities",
    metadata,
    _ws(),
    # user_id (the shop's customer id), anonymous_id, email, phone, line_user_id, device_token
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("value_hash", sa.LargeBinary(32), primary_key=True),
    _customer(),
    sa.Column("value_enc", sa.LargeBinary, nullable=False),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Index(None, "workspace_id", "customer_id"),
)

customer_merges = sa.Table(
    "customer_merges",
    metadata,
    _ws(),
    sa.Column("merge_id", sa.Uuid, primary_key=True),
    sa.Column("from_customer_id", sa.Uuid, nullable=False),
    sa.Column("into_customer_id", sa.Uuid, nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("moved", JSONDoc, nullable=False),  # rows moved per table
    sa.Column("merged_at", UTCDateTime, nullable=False),
    sa.Index(None, "workspace_id", "into_customer_id"),
)

consents = sa.Table(
    "consents",
    metadata,
    _ws(),
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    sa.Column("channel", sa.String(16), primary_key=True),  # email, line, sms, push, ...
    sa.Column("status", sa.String(16), nullable=False),  # opted_in | opted_out
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

consent_events = sa.Table(
    "consent_events",
    metadata,
    _ws(),
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    sa.Column("consent_event_id", sa.Uuid, primary_key=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("method", sa.String(64)),  # web form, checkout checkbox, paper, call centre …
    sa.Column("wording", sa.Text),  # the text shown when consent was asked
    sa.Column("source", sa.String(200)),  # page URL, import file, API caller
    sa.Column("ip", sa.String(64)),
    sa.Column("address_hash", sa.LargeBinary(32)),  # which address the consent covers
    sa.Column("recorded_at", UTCDateTime, nullable=False),
)

suppressions = sa.Table(
    "suppressions",
    metadata,
    _ws(),
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("address_hash", sa.LargeBinary(32), primary_key=True),
    sa.Column("reason", sa.String(16), nullable=False),  # hard_bounce | complaint | blacklist
    sa.Column("customer_id", sa.Uuid),
    sa.Column("note", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "workspace_id", "customer_id"),
)

events = sa.Table(
    "events",
    metadata,
    _ws(),
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("message_id", sa.String(100), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),  # track, page, screen, identify, group, alias
    sa.Column("name", sa.String(200)),
    sa.Column("properties", JSONDoc, nullable=False),
    sa.Column("context", JSONDoc, nullable=False),
    sa.Column("anonymous_id", sa.String(200)),
    sa.Column("user_id", sa.String(200)),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "message_id"),
    sa.Index(None, "workspace_id", "customer_id", "occurred_at"),
    sa.Index(None, "workspace_id", "name", "occurred_at"),
)

orders = sa.Table(
    "orders",
    metadata,
    _ws(),
    sa.Column("order_id", sa.String(128), primary_key=True),  # the shop's order number
    _customer(),
    sa.Column("ordered_at", UTCDateTime, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),  # online | store | marketplace
    sa.Column("status", sa.String(16), nullable=False),  # placed | cancelled | returned
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("subtotal", Money, nullable=False),
    sa.Column("discount", Money, nullable=False),
    sa.Column("shipping", Money, nullable=False),
    sa.Column("tax", Money, nullable=False),
    sa.Column("total", Money, nullable=False),
    sa.Column("refunded", Money, nullable=False),
    sa.Column("coupon", sa.String(100)),
    sa.Column("store_id", sa.String(100)),
    sa.Column("cancelled_at", UTCDateTime),
    sa.Column("returned_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Covers the segment leaves on purchases (a customer's orders in a window): index only.
    sa.Index(
        "ix_orders_customer_purchases",
        "workspace_id",
        "customer_id",
        "ordered_at",
        "status",
        "total",
        "refunded",
        "channel",
    ),
    sa.Index(None, "workspace_id", "ordered_at"),
)

order_items = sa.Table(
    "order_items",
    metadata,
    _ws(),
    sa.Column("order_id", sa.String(128), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    _customer(),
    sa.Column("sku", sa.String(128), nullable=False),
    sa.Column("product_id", sa.String(128)),
    sa.Column("product_name", sa.String(300)),
    sa.Column("category", sa.String(200)),
    sa.Column("brand", sa.String(200)),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", Money, nullable=False),
    sa.Column("discount", Money, nullable=False),
    sa.Column("coupon", sa.String(100)),
    sa.Column("is_sale", sa.Boolean, nullable=False),  # bought on sale vs at full price (PB)
    sa.Column("returned_quantity", sa.Integer, nullable=False),
    sa.Index(None, "workspace_id", "customer_id"),
    sa.Index(None, "workspace_id", "sku"),
)

products = sa.Table(
    "products",
    metadata,
    _ws(),
    sa.Column("sku", sa.String(128), primary_key=True),
    sa.Column("product_id", sa.String(128), nullable=False),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("category", sa.String(200)),
    sa.Column("brand", sa.String(200)),
    sa.Column("price", Money),
    sa.Column("cost", Money),
    sa.Column("stock", sa.Integer),
    sa.Column("url", sa.String(1000)),
    sa.Column("image_url", sa.String(1000)),
    sa.Column("attributes", JSONDoc, nullable=False, default=dict),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "workspace_id", "product_id"),
)

carts = sa.Table(
    "carts",
    metadata,
    _ws(),
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    sa.Column("cart_id", sa.String(128), primary_key=True),
    sa.Column("status", sa.String(24), nullable=False),  # open | checkout_started | converted
    sa.Column("items", JSONDoc, nullable=False),
    sa.Column("value", Money, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("order_id", sa.String(128)),
    sa.Column("checkout_started_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "workspace_id", "status", "updated_at"),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    _ws(),
    sa.Column("subscription_id", sa.String(128), primary_key=True),
    _customer(),
    sa.Column("plan", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # active | paused | cancelled
    sa.Column("amount", Money, nullable=False),
    sa.Column("interval_days", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("renewed_at", UTCDateTime),
    sa.Column("next_renewal_at", UTCDateTime),
    sa.Column("cancelled_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index(None, "workspace_id", "customer_id"),
)

customer_metrics = sa.Table(
    "customer_metrics",
    metadata,
    _ws(),
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    sa.Column("as_of", UTCDateTime, nullable=False),  # the analysis date the values describe
    sa.Column("recency_days", sa.Float),  # days since the last purchase
    sa.Column("frequency", sa.Integer, nullable=False),  # purchases in the RFM window
    sa.Column("monetary", Money, nullable=False),  # net revenue in the RFM window
    sa.Column("r_score", sa.SmallInteger),  # 1-5; NULL when no purchase in the window
    sa.Column("f_score", sa.SmallInteger),
    sa.Column("m_score", sa.SmallInteger),
    sa.Column("rfm_segment", sa.String(32)),  # key of the named segment, e.g. "champions"
    sa.Column("p_alive", sa.Float),  # BG/NBD probability the customer is still active
    sa.Column("expected_purchases", sa.Float),  # over the CLV horizon
    sa.Column("clv", Money),  # discounted predicted value over the horizon
    sa.Column("expected_next_order_at", UTCDateTime),
    sa.Column("computed_at", UTCDateTime, nullable=False),
    sa.Index(None, "workspace_id", "rfm_segment"),
)

segments = sa.Table(
    "segments",
    metadata,
    _ws(),
    sa.Column("segment_id", sa.Uuid, primary_key=True),
    sa.Column("key", sa.String(64), nullable=False),  # the marketer's handle, unique per workspace
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("rank", sa.Integer),  # the marketer's priority (4R: Rank); 1 comes first
    sa.Column("definition", JSONDoc, nullable=False),  # the condition tree, as saved
    sa.Column("depends_on", JSONDoc, nullable=False),  # what can change membership (causes)
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("refreshed_at", UTCDateTime),  # the last full evaluation of its membership
    sa.Column("archived_at", UTCDateTime),
    sa.UniqueConstraint("workspace_id", "key"),
)

segment_members = sa.Table(
    "segment_members",
    metadata,
    _ws(),
    sa.Column("segment_id", sa.Uuid, primary_key=True),
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    sa.Column("entered_at", UTCDateTime, nullable=False),  # the latest entry
    sa.Column("exited_at", UTCDateTime),  # NULL while a member
    sa.Index(None, "workspace_id", "customer_id"),
)

segment_signals = sa.Table(
    "segment_signals",
    metadata,
    _ws(),
    # One change of one customer in one segment at one evaluation: entered or exited.
    sa.Column("segment_id", sa.Uuid, primary_key=True),
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    sa.Column("at", UTCDateTime, primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),  # entered | exited
    sa.CheckConstraint("kind in ('entered', 'exited')", name="kind"),
    sa.Index(None, "workspace_id", "at"),
)

segment_queue = sa.Table(
    "segment_queue",
    metadata,
    _ws(),
    # Customers whose data changed since their segments were last evaluated, and why.
    sa.Column("queued_id", sa.Uuid, primary_key=True),
    sa.Column("customer_id", sa.Uuid, nullable=False),
    sa.Column("causes", JSONDoc, nullable=False),  # e.g. ["event:Product Viewed", "orders"]
    sa.Column("queued_at", UTCDateTime, nullable=False),
    sa.Index(None, "queued_id"),  # drains take the oldest rows across workspaces
)

operation_log = sa.Table(
    "operation_log",
    metadata,
    # IMPORTANT: append-only; each entry carries the hash of the one before it.
    sa.Column("entry_id", sa.Uuid, primary_key=True),
    sa.Column("workspace_id", sa.Uuid),  # NULL for operations on the installation itself
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),  # who: a user, token or OS account
    sa.Column("origin", sa.String(200)),  # from where: an IP address, "cli", "python"
    sa.Column("action", sa.String(64), nullable=False),  # e.g. segment.export
    sa.Column("target", sa.String(200)),  # what: e.g. the segment key
    sa.Column("details", JSONDoc, nullable=False),
    sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("entry_hash", sa.LargeBinary(32), nullable=False),
    sa.Index(None, "workspace_id", "at"),
)


# --- Delivery -----------------------------------------------------------------------

channel_providers = sa.Table(
    "channel_providers",
    metadata,
    _ws(),
    # How one channel of a workspace reaches its provider (one provider per channel).
    sa.Column("channel", sa.String(16), primary_key=True),  # email | line | sms | push | webhook
    sa.Column("provider", sa.String(32), nullable=False),  # smtp | line | twilio | fcm | webhook …
    sa.Column("settings", JSONDoc, nullable=False),  # base URL, sender, rate limits (no secrets)
    sa.Column("secrets_enc", sa.LargeBinary),  # AES-GCM of a JSON object: passwords, tokens, keys
    sa.Column("paused_until", UTCDateTime),  # set after repeated provider errors
    sa.Column("error_streak", sa.Integer, nullable=False, default=0),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

messages = sa.Table(
    "messages",
    metadata,
    _ws(),
    # The outbox and the message log in one: a send intent is a message in `queued`.
    sa.Column("message_id", sa.Uuid, primary_key=True),
    _customer(),
    sa.Column("idempotency_key", sa.String(200), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("purpose", sa.String(16), nullable=False),  # marketing | transactional
    sa.Column("topic", sa.String(64)),  # the preference-centre topic, when any
    sa.Column("template_key", sa.String(64)),
    sa.Column("params", JSONDoc, nullable=False),  # extra render context: cart, order, payload
    sa.Column("source_kind", sa.String(16), nullable=False),  # scenario | campaign | test | api
    sa.Column("source_id", sa.String(64)),
    sa.Column("step", sa.String(64)),
    sa.Column("variant", sa.String(64)),
    # queued | sending | sent | delivered | bounced | complained | failed | skipped | dead
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),  # why skipped / failed: a rule, or the provider's answer verbatim
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("not_before", UTCDateTime, nullable=False),  # scheduled time or next retry
    sa.Column("provider", sa.String(32)),
    sa.Column("provider_message_id", sa.String(200)),
    sa.Column("address_hash", sa.LargeBinary(32)),  # the address it went to (bounce matching)
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("delivered_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "idempotency_key"),
    sa.Index(None, "status", "not_before"),  # the drain takes due rows across workspaces
    sa.Index(None, "workspace_id", "customer_id", "sent_at"),  # frequency caps
    sa.Index(None, "provider", "provider_message_id"),  # provider callbacks
    sa.Index(None, "workspace_id", "channel", "address_hash"),  # bounces per address
)

seed_addresses = sa.Table(
    "seed_addresses",
    metadata,
    _ws(),
    # Test recipients: where test sends go, and the only addresses a development
    # workspace may deliver to.
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Column("address_hash", sa.LargeBinary(32), primary_key=True),
    sa.Column("address_enc", sa.LargeBinary, nullable=False),
    sa.Column("label", sa.String(200)),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

templates = sa.Table(
    "templates",
    metadata,
    _ws(),
    sa.Column("template_key", sa.String(64), primary_key=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("subject", sa.Text),  # email subject, push title
    sa.Column("body", sa.Text, nullable=False),  # text part, SMS / LINE / push text
    sa.Column("html", sa.Text),  # email HTML part
    sa.Column("extra", JSONDoc, nullable=False),  # LINE message objects, push data, webhook URL
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("archived_at", UTCDateTime),
)

content_blocks = sa.Table(
    "content_blocks",
    metadata,
    _ws(),
    # Reusable template fragments ({% include "block:footer" %}).
    sa.Column("block_key", sa.String(64), primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

preferences = sa.Table(
    "preferences",
    metadata,
    _ws(),
    # Per-topic subscriptions from the preference centre (channel consent lives in `consents`).
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    sa.Column("topic", sa.String(64), primary_key=True),
    sa.Column("subscribed", sa.Boolean, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("source", sa.String(200)),
)


# --- Scenarios -------------------------------------------------------------------------

scenarios = sa.Table(
    "scenarios",
    metadata,
    _ws(),
    sa.Column("scenario_id", sa.Uuid, primary_key=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),  # higher wins a contested customer
    sa.Column("status", sa.String(16), nullable=False),  # draft | live | paused | archived
    sa.Column("live_version", sa.Integer),  # the version new runs enter
    sa.Column("draft", JSONDoc, nullable=False),  # the latest saved definition
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "key"),
)

scenario_versions = sa.Table(
    "scenario_versions",
    metadata,
    _ws(),
    # Published definitions; a run stays on the version it entered.
    sa.Column("scenario_id", sa.Uuid, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", JSONDoc, nullable=False),
    sa.Column("published_by", sa.String(200), nullable=False),
    sa.Column("published_at", UTCDateTime, nullable=False),
)

_ACTIVE_RUN = sa.text("status = 'active'")

scenario_runs = sa.Table(
    "scenario_runs",
    metadata,
    _ws(),
    # One customer's way through one scenario version.
    sa.Column("run_id", sa.Uuid, primary_key=True),
    sa.Column("scenario_id", sa.Uuid, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    _customer(),
    sa.Column("run_key", sa.String(200), nullable=False),  # "" or the keyed property's value
    sa.Column("status", sa.String(16), nullable=False),  # active | completed | exited
    sa.Column("node_id", sa.String(64)),  # where it is (waiting) or goes next
    sa.Column("due_at", UTCDateTime),  # when the engine must look at it again
    sa.Column("waiting", JSONDoc),  # what a wait_for node awaits
    sa.Column("held_out", sa.Boolean, nullable=False),  # control group: recorded, never sent
    sa.Column("variant", sa.String(64)),  # the split path taken, when any
    sa.Column("context", JSONDoc, nullable=False),  # the trigger's properties: render params
    sa.Column("sends", sa.Integer, nullable=False),
    sa.Column("steps", sa.Integer, nullable=False),  # node visits so far (idempotency keys)
    sa.Column("entered_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("exit_reason", sa.String(64)),  # goal, opted_out, frequency_cap, holdout …
    sa.Index(
        "uq_scenario_runs_active",
        "workspace_id",
        "scenario_id",
        "customer_id",
        "run_key",
        unique=True,
        sqlite_where=_ACTIVE_RUN,
        postgresql_where=_ACTIVE_RUN,
    ),
    sa.Index(
        "ix_scenario_runs_due", "due_at", sqlite_where=_ACTIVE_RUN, postgresql_where=_ACTIVE_RUN
    ),
    sa.Index(None, "workspace_id", "customer_id", "status"),
    sa.Index(None, "workspace_id", "scenario_id", "entered_at"),
)

scenario_steps = sa.Table(
    "scenario_steps",
    metadata,
    _ws(),
    # Every node a run passed through and what happened there: per-node statistics.
    sa.Column("run_id", sa.Uuid, primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("scenario_id", sa.Uuid, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("node_id", sa.String(64), nullable=False),
    _customer(),
    sa.Column("at", UTCDateTime, nullable=False),
    # entered | waiting | passed | sent | skipped | exited
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("detail", sa.String(200)),  # exit reason, branch taken, message id …
    sa.Index(None, "workspace_id", "scenario_id", "node_id"),
)

scenario_inbox = sa.Table(
    "scenario_inbox",
    metadata,
    _ws(),
    # Things that may start, wake or end runs: events, segment changes, API calls.
    sa.Column("inbox_id", sa.Uuid, primary_key=True),
    _customer(),
    sa.Column("kind", sa.String(16), nullable=False),  # event | segment | api
    sa.Column("name", sa.String(200), nullable=False),  # event name, segment key, scenario key
    sa.Column("payload", JSONDoc, nullable=False),  # event properties; segment change
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index(None, "inbox_id"),  # drains take the oldest rows across workspaces
)

scenario_cursors = sa.Table(
    "scenario_cursors",
    metadata,
    _ws(),
    # How far the engine got through a stream or a calendar (segment signals, the last day a
    # date trigger ran, a schedule done), so each happens once.
    sa.Column("source", sa.String(100), primary_key=True),
    sa.Column("position", JSONDoc, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
