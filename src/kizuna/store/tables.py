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
    return sa.Column(
        "workspace_id",
        sa.Uuid,
        primary_key=True,
        info={"meaning": "the workspace the row belongs to (every query filters on it)"},
    )


def _customer() -> sa.Column[object]:
    return sa.Column(
        "customer_id",
        sa.Uuid,
        nullable=False,
        info={"meaning": "the customer the row belongs to (moved to the survivor on a merge)"},
    )


workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("workspace_id", sa.Uuid, primary_key=True, info={"meaning": "workspace id"}),
    sa.Column("slug", sa.String(64), nullable=False, unique=True,
              info={"meaning": "short name used by the CLI (`-w`) and in API paths"}),
    sa.Column("name", sa.String(200), nullable=False, info={"meaning": "display name"}),
    sa.Column("environment", sa.String(16), nullable=False,  # production | development
              info={"meaning": "production or development (development delivers only to seed "
                               "addresses)"}),
    sa.Column("brand", sa.String(64), nullable=False,  # groups a brand's environments
              info={"meaning": "groups a brand's production and development workspaces"}),
    sa.Column("time_zone", sa.String(64), nullable=False,
              info={"meaning": "IANA zone for reports, schedules and quiet hours (default "
                               "Asia/Tokyo)"}),
    sa.Column("settings", JSONDoc, nullable=False, default=dict,
              info={"meaning": "delivery rules: sender, frequency caps, quiet hours, topics, "
                               "public URL",
                    "updated": "`kizuna delivery settings` or the API"}),
    sa.Column("created_at", UTCDateTime, nullable=False, info={"meaning": "when created"}),
    sa.CheckConstraint("environment in ('production', 'development')", name="environment"),
    info={"area": "installation",
          "meaning": "One brand's environment (production or development); every other row "
                     "belongs to one.",
          "updated": "`kizuna init`, `kizuna workspaces create`; settings by "
                     "`kizuna delivery settings`"},
)  # fmt: skip

write_keys = sa.Table(
    "write_keys",
    metadata,
    # IMPORTANT: only a SHA-256 of the key is stored; the key is shown once at creation.
    sa.Column("key_hash", sa.LargeBinary(32), primary_key=True,
              info={"meaning": "SHA-256 of the key (the key is shown once, at creation)",
                    "personal": False}),
    sa.Column("workspace_id", sa.Uuid, nullable=False, index=True,
              info={"meaning": "the workspace the key ingests into"}),
    sa.Column("prefix", sa.String(12), nullable=False,
              info={"meaning": "first characters, to recognize the key in lists"}),
    sa.Column("name", sa.String(200), nullable=False,
              info={"meaning": "what the key is for (e.g. shopify)"}),
    sa.Column("created_at", UTCDateTime, nullable=False, info={"meaning": "when created"}),
    sa.Column("revoked_at", UTCDateTime, info={"meaning": "refused from then on"}),
    info={"area": "installation",
          "meaning": "Ingestion write keys (Segment-compatible API); only a SHA-256 of each key "
                     "is kept.",
          "updated": "created and revoked by the operator (`kizuna keys create`, "
                     "`kizuna keys revoke`)"},
)  # fmt: skip

customers = sa.Table(
    "customers",
    metadata,
    _ws(),
    sa.Column("customer_id", sa.Uuid, primary_key=True,
              info={"meaning": "Kizuna's customer id (time-ordered UUID)"}),
    sa.Column("shop_customer_id", sa.String(128),  # the shop's own id, when known
              info={"meaning": "the shop's own customer id (Segment userId), pseudonymous; in "
                               "clear to match the shop's systems",
                    "personal": True}),
    sa.Column("merged_into", sa.Uuid,  # set on the losing side of a merge
              info={"meaning": "on the losing side of a merge: the surviving customer"}),
    sa.Column("email_enc", sa.LargeBinary,
              info={"meaning": "e-mail address (trimmed, lower-cased)", "personal": True}),
    sa.Column("email_hash", sa.LargeBinary(32),
              info={"meaning": "lookup hash of the e-mail address (matching, consent, "
                               "suppressions)",
                    "personal": True}),
    sa.Column("phone_enc", sa.LargeBinary,
              info={"meaning": "phone number (E.164)", "personal": True}),
    sa.Column("phone_hash", sa.LargeBinary(32),
              info={"meaning": "lookup hash of the phone number", "personal": True}),
    sa.Column("last_name_enc", sa.LargeBinary,
              info={"meaning": "family name (姓)", "personal": True}),
    sa.Column("first_name_enc", sa.LargeBinary,
              info={"meaning": "given name (名)", "personal": True}),
    sa.Column("last_name_kana_enc", sa.LargeBinary,
              info={"meaning": "family name in kana (セイ)", "personal": True}),
    sa.Column("first_name_kana_enc", sa.LargeBinary,
              info={"meaning": "given name in kana (メイ)", "personal": True}),
    sa.Column("postal_code_enc", sa.LargeBinary,
              info={"meaning": "postal code (郵便番号)", "personal": True}),
    sa.Column("address_enc", sa.LargeBinary, info={"meaning": "street address", "personal": True}),
    sa.Column("birthday_enc", sa.LargeBinary, info={"meaning": "date of birth", "personal": True}),
    sa.Column("birth_md", sa.String(5),  # "MM-DD", for birthday scenarios
              info={"meaning": "birthday as MM-DD, for birthday scenarios; alone it identifies no "
                               "one",
                    "personal": True}),
    sa.Column("gender", sa.String(16),
              info={"meaning": "gender as the shop sends it; in clear for segments",
                    "personal": True}),
    sa.Column("prefecture", sa.String(16),
              info={"meaning": "prefecture (都道府県); in clear for RFMD and segments",
                    "personal": True}),
    sa.Column("city", sa.String(100),
              info={"meaning": "city; in clear for segments", "personal": True}),
    sa.Column("membership_rank", sa.String(64),
              info={"meaning": "the shop's membership rank (loyalty tier)"}),
    sa.Column("attributes", JSONDoc, nullable=False, default=dict,
              info={"meaning": "free-form traits from the shop (personal keys are stripped at "
                               "ingest)"}),
    sa.Column("registered_at", UTCDateTime,
              info={"meaning": "when the person registered with the shop"}),
    sa.Column("first_seen_at", UTCDateTime, nullable=False,
              info={"meaning": "first activity seen"}),
    sa.Column("last_seen_at", UTCDateTime, nullable=False,
              info={"meaning": "latest activity seen", "updated": "on every event"}),
    sa.Column("updated_at", UTCDateTime, nullable=False,
              info={"meaning": "last change of the profile"}),
    sa.Index(None, "workspace_id", "shop_customer_id"),
    sa.Index(None, "workspace_id", "email_hash"),
    sa.Index(None, "workspace_id", "prefecture"),
    info={"area": "hub",
          "meaning": "One person: the unified profile every identifier resolves to.",
          "updated": "on ingest (identify calls, orders, file imports), continuously; merges set "
                     "`merged_into`"},
)  # fmt: skip

identities = sa.Table(
    "identities",
    metadata,
    _ws(),
    # user_id (the shop's customer id), anonymous_id, email, phone, line_user_id, device_token
    sa.Column("kind", sa.String(16), primary_key=True,
              info={"meaning": "user_id, anonymous_id, email, phone, line_user_id or "
                               "device_token"}),
    sa.Column("value_hash", sa.LargeBinary(32), primary_key=True,
              info={"meaning": "lookup hash of the normalized value: how ingest finds the customer",
                    "personal": True}),
    _customer(),
    sa.Column("value_enc", sa.LargeBinary, nullable=False,
              info={"meaning": "the identifier itself", "personal": True}),
    sa.Column("first_seen_at", UTCDateTime, nullable=False, info={"meaning": "first seen"}),
    sa.Column("last_seen_at", UTCDateTime, nullable=False, info={"meaning": "last seen"}),
    sa.Index(None, "workspace_id", "customer_id"),
    info={"area": "hub",
          "meaning": "Every identifier of a customer (shop id, cookie id, e-mail, phone, LINE id, "
                     "device token), found by its lookup hash.",
          "updated": "on ingest when an identifier is first seen; `last_seen_at` at each "
                     "sighting; moved on merges"},
)  # fmt: skip

customer_merges = sa.Table(
    "customer_merges",
    metadata,
    _ws(),
    sa.Column("merge_id", sa.Uuid, primary_key=True, info={"meaning": "merge id"}),
    sa.Column("from_customer_id", sa.Uuid, nullable=False,
              info={"meaning": "the customer merged away"}),
    sa.Column("into_customer_id", sa.Uuid, nullable=False,
              info={"meaning": "the surviving customer"}),
    sa.Column("reason", sa.String(64), nullable=False,
              info={"meaning": "why: alias, shared identifier …"}),
    sa.Column("moved", JSONDoc, nullable=False,  # rows moved per table
              info={"meaning": "rows moved per table"}),
    sa.Column("merged_at", UTCDateTime, nullable=False, info={"meaning": "when merged"}),
    sa.Index(None, "workspace_id", "into_customer_id"),
    info={"area": "hub",
          "meaning": "Every merge of two customers into one, and what moved.",
          "updated": "appended on each merge (alias calls, shared identifiers)"},
)  # fmt: skip

consents = sa.Table(
    "consents",
    metadata,
    _ws(),
    sa.Column("customer_id", sa.Uuid, primary_key=True, info={"meaning": "the customer"}),
    sa.Column("channel", sa.String(16), primary_key=True,  # email, line, sms, push, ...
              info={"meaning": "email, line, sms, push …"}),
    sa.Column("status", sa.String(16), nullable=False,  # opted_in | opted_out
              info={"meaning": "opted_in or opted_out"}),
    sa.Column("changed_at", UTCDateTime, nullable=False,
              info={"meaning": "when the person gave or withdrew consent"}),
    sa.Column("updated_at", UTCDateTime, nullable=False,
              info={"meaning": "when Kizuna recorded it"}),
    info={"area": "hub",
          "meaning": "Current consent per customer and channel (the latest consent event).",
          "updated": "on consent imports, ingest, unsubscribes and the preference centre"},
)  # fmt: skip

consent_events = sa.Table(
    "consent_events",
    metadata,
    _ws(),
    sa.Column("customer_id", sa.Uuid, primary_key=True, info={"meaning": "the customer"}),
    sa.Column("consent_event_id", sa.Uuid, primary_key=True, info={"meaning": "event id"}),
    sa.Column("channel", sa.String(16), nullable=False,
              info={"meaning": "email, line, sms, push …"}),
    sa.Column("status", sa.String(16), nullable=False, info={"meaning": "opted_in or opted_out"}),
    sa.Column("occurred_at", UTCDateTime, nullable=False,
              info={"meaning": "when consent was given or withdrawn"}),
    sa.Column("method", sa.String(64),  # web form, checkout checkbox, paper, call centre …
              info={"meaning": "how: web form, checkout checkbox, paper, call centre …"}),
    sa.Column("wording", sa.Text,  # the text shown when consent was asked
              info={"meaning": "the text shown when consent was asked"}),
    sa.Column("source", sa.String(200),  # page URL, import file, API caller
              info={"meaning": "where: page URL, import file, API caller"}),
    sa.Column("ip", sa.String(64),
              info={"meaning": "IP address the consent came from, kept in clear as evidence",
                    "personal": True}),
    sa.Column("address_hash", sa.LargeBinary(32),  # which address the consent covers
              info={"meaning": "lookup hash of the address the consent covers", "personal": True}),
    sa.Column("recorded_at", UTCDateTime, nullable=False,
              info={"meaning": "when Kizuna recorded it"}),
    info={"area": "hub",
          "meaning": "Evidence of every consent given or withdrawn (特定電子メール法): when, how, "
                     "what text, from where.",
          "updated": "appended on every consent change; never edited"},
)  # fmt: skip

suppressions = sa.Table(
    "suppressions",
    metadata,
    _ws(),
    sa.Column("channel", sa.String(16), primary_key=True,
              info={"meaning": "the channel of the address"}),
    sa.Column("address_hash", sa.LargeBinary(32), primary_key=True,
              info={"meaning": "lookup hash of the suppressed address", "personal": True}),
    sa.Column("reason", sa.String(16), nullable=False,  # hard_bounce | complaint | blacklist
              info={"meaning": "hard_bounce, complaint or blacklist"}),
    sa.Column("customer_id", sa.Uuid, info={"meaning": "the customer, when known"}),
    sa.Column("note", sa.Text, info={"meaning": "the operator's note or the provider's answer"}),
    sa.Column("created_at", UTCDateTime, nullable=False, info={"meaning": "suppressed since"}),
    sa.Index(None, "workspace_id", "customer_id"),
    info={"area": "hub",
          "meaning": "Addresses never sent marketing: hard bounces, complaints, blacklist.",
          "updated": "on bounce (DSN) and complaint (ARF) feedback, and by the operator"},
)  # fmt: skip

events = sa.Table(
    "events",
    metadata,
    _ws(),
    sa.Column("customer_id", sa.Uuid, primary_key=True,
              info={"meaning": "the customer (moved to the survivor on a merge)"}),
    sa.Column("event_id", sa.Uuid, primary_key=True, info={"meaning": "event id (time-ordered)"}),
    sa.Column("message_id", sa.String(100), nullable=False,
              info={"meaning": "the sender's messageId: a repeat is ignored"}),
    sa.Column("type", sa.String(16), nullable=False,  # track, page, screen, identify, group, alias
              info={"meaning": "track, page, screen, identify, group or alias"}),
    sa.Column("name", sa.String(200), info={"meaning": "event name (track) or page / screen name"}),
    sa.Column("properties", JSONDoc, nullable=False,
              info={"meaning": "properties (personal keys such as name, e-mail, phone stripped "
                               "at ingest)"}),
    sa.Column("context", JSONDoc, nullable=False,
              info={"meaning": "context: page, campaign, device, IP address, user agent (personal "
                               "keys stripped)",
                    "personal": True}),
    sa.Column("anonymous_id", sa.String(200),
              info={"meaning": "anonymous (cookie) id as sent; pseudonymous", "personal": True}),
    sa.Column("user_id", sa.String(200),
              info={"meaning": "the shop's user id as sent; pseudonymous", "personal": True}),
    sa.Column("occurred_at", UTCDateTime, nullable=False,
              info={"meaning": "when it happened (the sender's time, checked for skew)"}),
    sa.Column("received_at", UTCDateTime, nullable=False,
              info={"meaning": "when Kizuna received it"}),
    sa.UniqueConstraint("workspace_id", "message_id"),
    sa.Index(None, "workspace_id", "customer_id", "occurred_at"),
    sa.Index(None, "workspace_id", "name", "occurred_at"),
    info={"area": "hub",
          "meaning": "Behaviour: every Segment-spec call (track, page, screen, identify, group, "
                     "alias), online, offline and messaging.",
          "updated": "appended on ingest (HTTP API, file imports) and by delivery feedback "
                     "(opened, clicked …), continuously; moved on merges"},
)  # fmt: skip

orders = sa.Table(
    "orders",
    metadata,
    _ws(),
    sa.Column("order_id", sa.String(128), primary_key=True,  # the shop's order number
              info={"meaning": "the shop's order number"}),
    _customer(),
    sa.Column("ordered_at", UTCDateTime, nullable=False, info={"meaning": "when ordered"}),
    sa.Column("channel", sa.String(16), nullable=False,  # online | store | marketplace
              info={"meaning": "online, store or marketplace"}),
    sa.Column("status", sa.String(16), nullable=False,  # placed | cancelled | returned
              info={"meaning": "placed, cancelled or returned"}),
    sa.Column("currency", sa.String(3), nullable=False, info={"meaning": "ISO 4217 code (JPY)"}),
    sa.Column("subtotal", Money, nullable=False,
              info={"meaning": "sum of the lines before the order discount"}),
    sa.Column("discount", Money, nullable=False, info={"meaning": "order discount"}),
    sa.Column("shipping", Money, nullable=False, info={"meaning": "shipping charged"}),
    sa.Column("tax", Money, nullable=False, info={"meaning": "tax"}),
    sa.Column("total", Money, nullable=False, info={"meaning": "amount paid"}),
    sa.Column("refunded", Money, nullable=False,
              info={"meaning": "amount refunded by cancellations and returns"}),
    sa.Column("coupon", sa.String(100), info={"meaning": "coupon code used"}),
    sa.Column("store_id", sa.String(100), info={"meaning": "the store, for orders in a store"}),
    sa.Column("cancelled_at", UTCDateTime, info={"meaning": "when cancelled"}),
    sa.Column("returned_at", UTCDateTime, info={"meaning": "when returned"}),
    sa.Column("updated_at", UTCDateTime, nullable=False, info={"meaning": "last change"}),
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
    sa.Index(None, "workspace_id", "updated_at"),  # the attribution job reads what changed
    info={"area": "hub",
          "meaning": "Orders, online and offline, with their totals.",
          "updated": "on ingest of order events and order imports; cancellations and returns "
                     "update them"},
)  # fmt: skip

order_items = sa.Table(
    "order_items",
    metadata,
    _ws(),
    sa.Column("order_id", sa.String(128), primary_key=True, info={"meaning": "the order"}),
    sa.Column("line_no", sa.Integer, primary_key=True,
              info={"meaning": "line number within the order"}),
    _customer(),
    sa.Column("sku", sa.String(128), nullable=False, info={"meaning": "the SKU bought"}),
    sa.Column("product_id", sa.String(128), info={"meaning": "the product"}),
    sa.Column("product_name", sa.String(300),
              info={"meaning": "product name at the time of the order"}),
    sa.Column("category", sa.String(200), info={"meaning": "category (CTB analysis)"}),
    sa.Column("brand", sa.String(200), info={"meaning": "brand (CTB analysis)"}),
    sa.Column("quantity", sa.Integer, nullable=False, info={"meaning": "units bought"}),
    sa.Column("unit_price", Money, nullable=False, info={"meaning": "price per unit"}),
    sa.Column("discount", Money, nullable=False, info={"meaning": "discount on the line"}),
    sa.Column("coupon", sa.String(100), info={"meaning": "coupon code on the line"}),
    sa.Column("is_sale", sa.Boolean, nullable=False,  # bought on sale vs at full price (PB)
              info={"meaning": "bought on sale rather than at full price (PB analysis)"}),
    sa.Column("returned_quantity", sa.Integer, nullable=False, info={"meaning": "units returned"}),
    sa.Index(None, "workspace_id", "customer_id"),
    sa.Index(None, "workspace_id", "sku"),
    info={"area": "hub", "meaning": "The lines of each order.", "updated": "with their order"},
)  # fmt: skip

products = sa.Table(
    "products",
    metadata,
    _ws(),
    sa.Column("sku", sa.String(128), primary_key=True, info={"meaning": "SKU"}),
    sa.Column("product_id", sa.String(128), nullable=False,
              info={"meaning": "the product (one product, several SKUs)"}),
    sa.Column("name", sa.String(300), nullable=False, info={"meaning": "name"}),
    sa.Column("category", sa.String(200), info={"meaning": "category"}),
    sa.Column("brand", sa.String(200), info={"meaning": "brand"}),
    sa.Column("price", Money, info={"meaning": "current price"}),
    sa.Column("cost", Money, info={"meaning": "unit cost (margins)"}),
    sa.Column("stock", sa.Integer, info={"meaning": "units in stock (back-in-stock scenarios)"}),
    sa.Column("url", sa.String(1000), info={"meaning": "product page"}),
    sa.Column("image_url", sa.String(1000), info={"meaning": "product image"}),
    sa.Column("attributes", JSONDoc, nullable=False, default=dict,
              info={"meaning": "other attributes from the shop"}),
    sa.Column("updated_at", UTCDateTime, nullable=False, info={"meaning": "last change"}),
    sa.Index(None, "workspace_id", "product_id"),
    info={"area": "hub",
          "meaning": "The product catalogue with stock.",
          "updated": "on product events and product imports"},
)  # fmt: skip

carts = sa.Table(
    "carts",
    metadata,
    _ws(),
    sa.Column("customer_id", sa.Uuid, primary_key=True, info={"meaning": "the customer"}),
    sa.Column("cart_id", sa.String(128), primary_key=True, info={"meaning": "the shop's cart id"}),
    sa.Column("status", sa.String(24), nullable=False,  # open | checkout_started | converted
              info={"meaning": "open, checkout_started or converted"}),
    sa.Column("items", JSONDoc, nullable=False, info={"meaning": "the lines in the cart"}),
    sa.Column("value", Money, nullable=False, info={"meaning": "cart value"}),
    sa.Column("currency", sa.String(3), nullable=False, info={"meaning": "ISO 4217 code"}),
    sa.Column("order_id", sa.String(128), info={"meaning": "the order that converted it"}),
    sa.Column("checkout_started_at", UTCDateTime, info={"meaning": "when checkout started"}),
    sa.Column("updated_at", UTCDateTime, nullable=False, info={"meaning": "last change"}),
    sa.Index(None, "workspace_id", "status", "updated_at"),
    info={"area": "hub",
          "meaning": "Open carts and checkouts, for cart-abandonment scenarios.",
          "updated": "on cart and checkout events; marked converted by the order"},
)  # fmt: skip

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    _ws(),
    sa.Column("subscription_id", sa.String(128), primary_key=True,
              info={"meaning": "the shop's contract id"}),
    _customer(),
    sa.Column("plan", sa.String(200), nullable=False, info={"meaning": "plan name"}),
    sa.Column("status", sa.String(16), nullable=False,  # active | paused | cancelled
              info={"meaning": "active, paused or cancelled"}),
    sa.Column("amount", Money, nullable=False, info={"meaning": "amount per renewal"}),
    sa.Column("interval_days", sa.Integer, nullable=False,
              info={"meaning": "days between renewals"}),
    sa.Column("started_at", UTCDateTime, nullable=False, info={"meaning": "contract start"}),
    sa.Column("renewed_at", UTCDateTime, info={"meaning": "last renewal"}),
    sa.Column("next_renewal_at", UTCDateTime, info={"meaning": "next renewal due"}),
    sa.Column("cancelled_at", UTCDateTime, info={"meaning": "when cancelled"}),
    sa.Column("updated_at", UTCDateTime, nullable=False, info={"meaning": "last change"}),
    sa.Index(None, "workspace_id", "customer_id"),
    info={"area": "hub",
          "meaning": "Subscription contracts (定期購入).",
          "updated": "on subscription events and imports"},
)  # fmt: skip

customer_metrics = sa.Table(
    "customer_metrics",
    metadata,
    _ws(),
    sa.Column("customer_id", sa.Uuid, primary_key=True, info={"meaning": "the customer"}),
    sa.Column("as_of", UTCDateTime, nullable=False,  # the analysis date the values describe
              info={"meaning": "the analysis date the values describe"}),
    sa.Column("recency_days", sa.Float,  # days since the last purchase
              info={"meaning": "days since the last purchase"}),
    sa.Column("frequency", sa.Integer, nullable=False,  # purchases in the RFM window
              info={"meaning": "purchases in the RFM window"}),
    sa.Column("monetary", Money, nullable=False,  # net revenue in the RFM window
              info={"meaning": "net revenue in the RFM window"}),
    sa.Column("r_score", sa.SmallInteger,  # 1-5; NULL when no purchase in the window
              info={"meaning": "recency score 1-5 (NULL without a purchase in the window)"}),
    sa.Column("f_score", sa.SmallInteger, info={"meaning": "frequency score 1-5"}),
    sa.Column("m_score", sa.SmallInteger, info={"meaning": "monetary score 1-5"}),
    sa.Column("rfm_segment", sa.String(32),  # key of the named segment, e.g. "champions"
              info={"meaning": "named RFM segment, e.g. champions (優良顧客)"}),
    sa.Column("p_alive", sa.Float,  # BG/NBD probability the customer is still active
              info={"meaning": "BG/NBD probability the customer is still active"}),
    sa.Column("expected_purchases", sa.Float,  # over the CLV horizon
              info={"meaning": "expected purchases over the CLV horizon"}),
    sa.Column("clv", Money,  # discounted predicted value over the horizon
              info={"meaning": "discounted predicted value over the horizon"}),
    sa.Column("expected_next_order_at", UTCDateTime,
              info={"meaning": "expected date of the next order"}),
    sa.Column("computed_at", UTCDateTime, nullable=False, info={"meaning": "when computed"}),
    sa.Index(None, "workspace_id", "rfm_segment"),
    info={"area": "analytics",
          "meaning": "Stored per-customer analytics: RFM scores and segment, P(alive), CLV, next "
                     "order.",
          "updated": "recomputed every `KIZUNA_METRICS_REFRESH_HOURS` (default 24 h) by the "
                     "worker, or on demand"},
)  # fmt: skip

segments = sa.Table(
    "segments",
    metadata,
    _ws(),
    sa.Column("segment_id", sa.Uuid, primary_key=True, info={"meaning": "segment id"}),
    sa.Column("key", sa.String(64), nullable=False,  # the marketer's handle, unique per workspace
              info={"meaning": "the marketer's handle, unique per workspace"}),
    sa.Column("name", sa.String(200), nullable=False, info={"meaning": "display name"}),
    sa.Column("description", sa.Text, info={"meaning": "what it is for"}),
    sa.Column("rank", sa.Integer,  # the marketer's priority (4R: Rank); 1 comes first
              info={"meaning": "priority (4R: Rank); 1 comes first"}),
    sa.Column("definition", JSONDoc, nullable=False,  # the condition tree, as saved
              info={"meaning": "the condition tree, as saved"}),
    sa.Column("depends_on", JSONDoc, nullable=False,  # what can change membership (causes)
              info={"meaning": "what can change membership (events, orders, the clock …)"}),
    sa.Column("created_by", sa.String(200), nullable=False, info={"meaning": "who saved it first"}),
    sa.Column("created_at", UTCDateTime, nullable=False, info={"meaning": "when first saved"}),
    sa.Column("updated_at", UTCDateTime, nullable=False, info={"meaning": "last saved"}),
    sa.Column("refreshed_at", UTCDateTime,  # the last full evaluation of its membership
              info={"meaning": "the last full evaluation of its membership"}),
    sa.Column("archived_at", UTCDateTime, info={"meaning": "when archived"}),
    sa.UniqueConstraint("workspace_id", "key"),
    info={"area": "segments",
          "meaning": "Saved segment definitions.",
          "updated": "saved and archived by marketers; `refreshed_at` at each full evaluation"},
)  # fmt: skip

segment_members = sa.Table(
    "segment_members",
    metadata,
    _ws(),
    sa.Column("segment_id", sa.Uuid, primary_key=True, info={"meaning": "the segment"}),
    sa.Column("customer_id", sa.Uuid, primary_key=True, info={"meaning": "the customer"}),
    sa.Column("entered_at", UTCDateTime, nullable=False,  # the latest entry
              info={"meaning": "the latest entry"}),
    sa.Column("exited_at", UTCDateTime,  # NULL while a member
              info={"meaning": "when the customer left; NULL while a member"}),
    sa.Index(None, "workspace_id", "customer_id"),
    info={"area": "segments",
          "meaning": "Who is in each segment now, and who left.",
          "updated": "on each ingested change (through the queue, within seconds) and at "
                     "scheduled refreshes (`KIZUNA_SEGMENT_REFRESH_MINUTES`, default 15)"},
)  # fmt: skip

segment_signals = sa.Table(
    "segment_signals",
    metadata,
    _ws(),
    # One change of one customer in one segment at one evaluation: entered or exited.
    sa.Column("segment_id", sa.Uuid, primary_key=True, info={"meaning": "the segment"}),
    sa.Column("customer_id", sa.Uuid, primary_key=True, info={"meaning": "the customer"}),
    sa.Column("at", UTCDateTime, primary_key=True,
              info={"meaning": "the evaluation that saw the change"}),
    sa.Column("kind", sa.String(8), nullable=False,  # entered | exited
              info={"meaning": "entered or exited"}),
    sa.CheckConstraint("kind in ('entered', 'exited')", name="kind"),
    sa.Index(None, "workspace_id", "at"),
    info={"area": "segments",
          "meaning": "Each entry into or exit from a segment, for scenario triggers.",
          "updated": "appended whenever membership changes"},
)  # fmt: skip

segment_queue = sa.Table(
    "segment_queue",
    metadata,
    _ws(),
    # Customers whose data changed since their segments were last evaluated, and why.
    sa.Column("queued_id", sa.Uuid, primary_key=True,
              info={"meaning": "queue entry id (time-ordered)"}),
    sa.Column("customer_id", sa.Uuid, nullable=False, info={"meaning": "the customer"}),
    sa.Column("causes", JSONDoc, nullable=False,  # e.g. ["event:Product Viewed", "orders"]
              info={"meaning": "what changed, e.g. event:Product Viewed, orders"}),
    sa.Column("queued_at", UTCDateTime, nullable=False, info={"meaning": "when queued"}),
    sa.Index(None, "queued_id"),  # drains take the oldest rows across workspaces
    info={"area": "segments",
          "meaning": "Customers whose data changed since their segments were last evaluated, and "
                     "why.",
          "updated": "appended on ingest; drained by the workers continuously (several times a "
                     "second)"},
)  # fmt: skip

operation_log = sa.Table(
    "operation_log",
    metadata,
    # IMPORTANT: append-only; each entry carries the hash of the one before it.
    sa.Column("entry_id", sa.Uuid, primary_key=True,
              info={"meaning": "entry id (time-ordered: the chain's order)"}),
    sa.Column("workspace_id", sa.Uuid,  # NULL for operations on the installation itself
              info={"meaning": "the workspace; NULL for the installation itself"}),
    sa.Column("at", UTCDateTime, nullable=False, info={"meaning": "when"}),
    sa.Column("actor", sa.String(200), nullable=False,  # who: a user, token or OS account
              info={"meaning": "who: a user, token or operating-system account (staff, kept as "
                               "evidence)",
                    "personal": True}),
    sa.Column("origin", sa.String(200),  # from where: an IP address, "cli", "python"
              info={"meaning": "from where: an IP address, cli or python (kept as evidence)",
                    "personal": True}),
    sa.Column("action", sa.String(64), nullable=False,  # e.g. segment.export
              info={"meaning": "what was done, e.g. segment.export"}),
    sa.Column("target", sa.String(200),  # what: e.g. the segment key
              info={"meaning": "what it was done to, e.g. the segment key"}),
    sa.Column("details", JSONDoc, nullable=False,
              info={"meaning": "the particulars (never personal data in clear)"}),
    sa.Column("prev_hash", sa.LargeBinary(32), nullable=False,
              info={"meaning": "SHA-256 hash of the previous entry (zeros for the first)",
                    "personal": False}),
    sa.Column("entry_hash", sa.LargeBinary(32), nullable=False,
              info={"meaning": "SHA-256 of the previous hash and this entry's canonical JSON",
                    "personal": False}),
    sa.Index(None, "workspace_id", "at"),
    info={"area": "governance",
          "meaning": "The tamper-evident operation log: who saw, exported or changed what, as a "
                     "hash chain (`kizuna audit verify`).",
          "updated": "appended on sign-ins, exports, reveals, publishing, permission changes and "
                     "key rotations; never updated or deleted"},
)  # fmt: skip


# --- Delivery -----------------------------------------------------------------------

channel_providers = sa.Table(
    "channel_providers",
    metadata,
    _ws(),
    # How one channel of a workspace reaches its provider (one provider per channel).
    sa.Column("channel", sa.String(16), primary_key=True,  # email | line | sms | push | webhook
              info={"meaning": "email, line, sms, push or webhook"}),
    sa.Column("provider", sa.String(32), nullable=False,  # smtp | line | twilio | fcm | webhook …
              info={"meaning": "smtp, line, twilio, fcm, webhook …"}),
    sa.Column("settings", JSONDoc, nullable=False,  # base URL, sender, rate limits (no secrets)
              info={"meaning": "host, sender, rate limits (no secrets)"}),
    sa.Column("secrets_enc", sa.LargeBinary,  # AES-GCM of a JSON object: passwords, tokens, keys
              info={"meaning": "provider credentials (passwords, tokens, DKIM key) as encrypted "
                               "JSON",
                    "personal": False,
                    "protection": "encrypted"}),
    sa.Column("paused_until", UTCDateTime,  # set after repeated provider errors
              info={"meaning": "no sends until then, after repeated provider errors"}),
    sa.Column("error_streak", sa.Integer, nullable=False, default=0,
              info={"meaning": "provider errors in a row"}),
    sa.Column("updated_at", UTCDateTime, nullable=False, info={"meaning": "last change"}),
    info={"area": "delivery",
          "meaning": "How each channel of a workspace reaches its provider (one provider per "
                     "channel).",
          "updated": "set by the operator (`kizuna delivery provider`); pauses and error streaks "
                     "by the send pipeline"},
)  # fmt: skip

messages = sa.Table(
    "messages",
    metadata,
    _ws(),
    # The outbox and the message log in one: a send intent is a message in `queued`.
    sa.Column("message_id", sa.Uuid, primary_key=True,
              info={"meaning": "message id (time-ordered)"}),
    _customer(),
    sa.Column("idempotency_key", sa.String(200), nullable=False,
              info={"meaning": "the sender's key: the same intent is never queued twice"}),
    sa.Column("channel", sa.String(16), nullable=False,
              info={"meaning": "email, line, sms, push or webhook"}),
    sa.Column("purpose", sa.String(16), nullable=False,  # marketing | transactional
              info={"meaning": "marketing or transactional"}),
    sa.Column("topic", sa.String(64),  # the preference-centre topic, when any
              info={"meaning": "the preference-centre topic, when any"}),
    sa.Column("template_key", sa.String(64), info={"meaning": "the template rendered"}),
    sa.Column("params", JSONDoc, nullable=False,  # extra render context: cart, order, payload
              info={"meaning": "extra render context: cart, order, trigger payload"}),
    sa.Column("source_kind", sa.String(16), nullable=False,  # scenario | campaign | test | api
              info={"meaning": "scenario, campaign, test or api"}),
    sa.Column("source_id", sa.String(64), info={"meaning": "the scenario or campaign"}),
    sa.Column("step", sa.String(64), info={"meaning": "the scenario node that sent it"}),
    sa.Column("variant", sa.String(64), info={"meaning": "the A/B variant"}),
    # queued | sending | sent | delivered | bounced | complained | failed | skipped | dead
    sa.Column("status", sa.String(16), nullable=False,
              info={"meaning": "queued, sending, sent, delivered, bounced, complained, failed, "
                               "skipped or dead"}),
    sa.Column("reason", sa.Text,  # why skipped / failed: a rule, or the provider's answer verbatim
              info={"meaning": "why skipped or failed: a rule, or the provider's answer"}),
    sa.Column("attempts", sa.Integer, nullable=False, default=0,
              info={"meaning": "send attempts so far"}),
    sa.Column("not_before", UTCDateTime, nullable=False,  # scheduled time or next retry
              info={"meaning": "scheduled time or next retry"}),
    sa.Column("provider", sa.String(32), info={"meaning": "the provider that took it"}),
    sa.Column("provider_message_id", sa.String(200),
              info={"meaning": "the provider's id (matches delivery receipts and bounces)"}),
    sa.Column("address_hash", sa.LargeBinary(32),  # the address it went to (bounce matching)
              info={"meaning": "lookup hash of the address it went to (bounce matching)",
                    "personal": True}),
    sa.Column("created_at", UTCDateTime, nullable=False, info={"meaning": "when queued"}),
    sa.Column("sent_at", UTCDateTime, info={"meaning": "when handed to the provider"}),
    sa.Column("delivered_at", UTCDateTime, info={"meaning": "when delivered"}),
    sa.Column("opened_at", UTCDateTime,
              info={"meaning": "first open by a person (machine opens left out)"}),
    sa.Column("clicked_at", UTCDateTime,
              info={"meaning": "first click by a person (machine clicks left out)"}),
    sa.Column("unsubscribed_at", UTCDateTime,
              info={"meaning": "when its unsubscribe link or header was used"}),
    sa.Column("updated_at", UTCDateTime, nullable=False, info={"meaning": "last change"}),
    sa.UniqueConstraint("workspace_id", "idempotency_key"),
    sa.Index(None, "status", "not_before"),  # the drain takes due rows across workspaces
    sa.Index(None, "workspace_id", "source_kind", "source_id"),  # reports per campaign
    sa.Index(None, "workspace_id", "customer_id", "sent_at"),  # frequency caps, attribution
    sa.Index(None, "provider", "provider_message_id"),  # provider callbacks
    sa.Index(None, "workspace_id", "channel", "address_hash"),  # bounces per address
    info={"area": "delivery",
          "meaning": "The outbox and the message log: every message to a customer, from intent to "
                     "delivery.",
          "updated": "inserted by scenarios, campaigns, the API and test sends; status moved by "
                     "the send pipeline and provider feedback, continuously"},
)  # fmt: skip

seed_addresses = sa.Table(
    "seed_addresses",
    metadata,
    _ws(),
    # Test recipients: where test sends go, and the only addresses a development
    # workspace may deliver to.
    sa.Column("channel", sa.String(16), primary_key=True,
              info={"meaning": "the channel of the address"}),
    sa.Column("address_hash", sa.LargeBinary(32), primary_key=True,
              info={"meaning": "lookup hash of the address", "personal": True}),
    sa.Column("address_enc", sa.LargeBinary, nullable=False,
              info={"meaning": "the address (a staff member's)", "personal": True}),
    sa.Column("label", sa.String(200), info={"meaning": "whose address it is"}),
    sa.Column("created_at", UTCDateTime, nullable=False, info={"meaning": "when added"}),
    info={"area": "delivery",
          "meaning": "Test recipients: where test sends go, and the only addresses a development "
                     "workspace delivers to.",
          "updated": "by the operator (`kizuna delivery seed`)"},
)  # fmt: skip

templates = sa.Table(
    "templates",
    metadata,
    _ws(),
    sa.Column("template_key", sa.String(64), primary_key=True,
              info={"meaning": "the template's handle"}),
    sa.Column("channel", sa.String(16), nullable=False,
              info={"meaning": "the channel it renders for"}),
    sa.Column("name", sa.String(200), nullable=False, info={"meaning": "display name"}),
    sa.Column("subject", sa.Text,  # email subject, push title
              info={"meaning": "e-mail subject or push title"}),
    sa.Column("body", sa.Text, nullable=False,  # text part, SMS / LINE / push text
              info={"meaning": "text part, SMS, LINE or push text"}),
    sa.Column("html", sa.Text, info={"meaning": "e-mail HTML part"}),  # email HTML part
    sa.Column("extra", JSONDoc, nullable=False,  # LINE message objects, push data, webhook URL
              info={"meaning": "LINE message objects, push data, webhook URL"}),
    sa.Column("version", sa.Integer, nullable=False,
              info={"meaning": "version number, raised by each save"}),
    sa.Column("created_by", sa.String(200), nullable=False, info={"meaning": "who saved it"}),
    sa.Column("updated_at", UTCDateTime, nullable=False, info={"meaning": "last saved"}),
    sa.Column("archived_at", UTCDateTime, info={"meaning": "when archived"}),
    info={"area": "delivery",
          "meaning": "Message templates per channel.",
          "updated": "saved by content designers; each save is a new version"},
)  # fmt: skip

content_blocks = sa.Table(
    "content_blocks",
    metadata,
    _ws(),
    # Reusable template fragments ({% include "block:footer" %}).
    sa.Column("block_key", sa.String(64), primary_key=True, info={"meaning": "the block's handle"}),
    sa.Column("body", sa.Text, nullable=False, info={"meaning": "template text"}),
    sa.Column("updated_by", sa.String(200), nullable=False, info={"meaning": "who saved it last"}),
    sa.Column("updated_at", UTCDateTime, nullable=False, info={"meaning": "last saved"}),
    info={"area": "delivery",
          "meaning": "Reusable template fragments (`{% include \"block:footer\" %}`).",
          "updated": "saved by content designers"},
)  # fmt: skip

preferences = sa.Table(
    "preferences",
    metadata,
    _ws(),
    # Per-topic subscriptions from the preference centre (channel consent lives in `consents`).
    sa.Column("customer_id", sa.Uuid, primary_key=True, info={"meaning": "the customer"}),
    sa.Column("topic", sa.String(64), primary_key=True, info={"meaning": "the topic"}),
    sa.Column("subscribed", sa.Boolean, nullable=False, info={"meaning": "subscribed or not"}),
    sa.Column("changed_at", UTCDateTime, nullable=False, info={"meaning": "when changed"}),
    sa.Column("source", sa.String(200), info={"meaning": "where the change came from"}),
    info={"area": "delivery",
          "meaning": "Per-topic subscriptions from the preference centre (channel consent is in "
                     "`consents`).",
          "updated": "by customers on the preference-centre and unsubscribe pages"},
)  # fmt: skip


# --- Scenarios -------------------------------------------------------------------------

scenarios = sa.Table(
    "scenarios",
    metadata,
    _ws(),
    sa.Column("scenario_id", sa.Uuid, primary_key=True, info={"meaning": "scenario id"}),
    sa.Column("key", sa.String(64), nullable=False,
              info={"meaning": "the designer's handle, unique per workspace"}),
    sa.Column("name", sa.String(200), nullable=False, info={"meaning": "display name"}),
    sa.Column("priority", sa.Integer, nullable=False,  # higher wins a contested customer
              info={"meaning": "higher wins a customer two scenarios contest"}),
    sa.Column("status", sa.String(16), nullable=False,  # draft | live | paused | archived
              info={"meaning": "draft, live, paused or archived"}),
    sa.Column("live_version", sa.Integer,  # the version new runs enter
              info={"meaning": "the version new runs enter"}),
    sa.Column("draft", JSONDoc, nullable=False,  # the latest saved definition
              info={"meaning": "the latest saved definition"}),
    sa.Column("created_by", sa.String(200), nullable=False, info={"meaning": "who created it"}),
    sa.Column("created_at", UTCDateTime, nullable=False, info={"meaning": "when created"}),
    sa.Column("updated_at", UTCDateTime, nullable=False, info={"meaning": "last change"}),
    sa.UniqueConstraint("workspace_id", "key"),
    info={"area": "scenarios",
          "meaning": "Scenarios (journeys): the latest draft and the live version.",
          "updated": "by scenario designers (save, publish, pause, resume, archive)"},
)  # fmt: skip

scenario_versions = sa.Table(
    "scenario_versions",
    metadata,
    _ws(),
    # Published definitions; a run stays on the version it entered.
    sa.Column("scenario_id", sa.Uuid, primary_key=True, info={"meaning": "the scenario"}),
    sa.Column("version", sa.Integer, primary_key=True, info={"meaning": "version number"}),
    sa.Column("definition", JSONDoc, nullable=False, info={"meaning": "the published definition"}),
    sa.Column("published_by", sa.String(200), nullable=False, info={"meaning": "who published it"}),
    sa.Column("published_at", UTCDateTime, nullable=False, info={"meaning": "when published"}),
    info={"area": "scenarios",
          "meaning": "Published scenario definitions; a run stays on the version it entered.",
          "updated": "appended on publish; never changed"},
)  # fmt: skip

_ACTIVE_RUN = sa.text("status = 'active'")

scenario_runs = sa.Table(
    "scenario_runs",
    metadata,
    _ws(),
    # One customer's way through one scenario version.
    sa.Column("run_id", sa.Uuid, primary_key=True, info={"meaning": "run id"}),
    sa.Column("scenario_id", sa.Uuid, nullable=False, info={"meaning": "the scenario"}),
    sa.Column("version", sa.Integer, nullable=False, info={"meaning": "the version it runs"}),
    _customer(),
    sa.Column("run_key", sa.String(200), nullable=False,  # "" or the keyed property's value
              info={"meaning": "empty, or the keyed property's value (one run per order …)"}),
    sa.Column("status", sa.String(16), nullable=False,  # active | completed | exited
              info={"meaning": "active, completed or exited"}),
    sa.Column("node_id", sa.String(64),  # where it is (waiting) or goes next
              info={"meaning": "where it waits or goes next"}),
    sa.Column("due_at", UTCDateTime,  # when the engine must look at it again
              info={"meaning": "when the engine must look at it again"}),
    sa.Column("waiting", JSONDoc,  # what a wait_for node awaits
              info={"meaning": "what a wait_for node awaits"}),
    sa.Column("held_out", sa.Boolean, nullable=False,  # control group: recorded, never sent
              info={"meaning": "in the control group: recorded, never sent"}),
    sa.Column("variant", sa.String(64),  # the split path taken, when any
              info={"meaning": "the split path taken"}),
    sa.Column("context", JSONDoc, nullable=False,  # the trigger's properties: render params
              info={"meaning": "the trigger's properties, for rendering (personal keys stripped "
                               "at ingest)"}),
    sa.Column("sends", sa.Integer, nullable=False, info={"meaning": "messages sent so far"}),
    sa.Column("steps", sa.Integer, nullable=False,  # node visits so far (idempotency keys)
              info={"meaning": "node visits so far (idempotency keys)"}),
    sa.Column("entered_at", UTCDateTime, nullable=False, info={"meaning": "when the run began"}),
    sa.Column("updated_at", UTCDateTime, nullable=False, info={"meaning": "last change"}),
    sa.Column("ended_at", UTCDateTime, info={"meaning": "when it ended"}),
    sa.Column("exit_reason", sa.String(64),  # goal, opted_out, frequency_cap, holdout …
              info={"meaning": "goal, opted_out, frequency_cap, holdout …"}),
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
    info={"area": "scenarios",
          "meaning": "One customer's way through one scenario version.",
          "updated": "by the scenario engine, continuously (workers every few seconds)"},
)  # fmt: skip

scenario_steps = sa.Table(
    "scenario_steps",
    metadata,
    _ws(),
    # Every node a run passed through and what happened there: per-node statistics.
    sa.Column("run_id", sa.Uuid, primary_key=True, info={"meaning": "the run"}),
    sa.Column("step", sa.Integer, primary_key=True, info={"meaning": "step number within the run"}),
    sa.Column("scenario_id", sa.Uuid, nullable=False, info={"meaning": "the scenario"}),
    sa.Column("version", sa.Integer, nullable=False, info={"meaning": "the version"}),
    sa.Column("node_id", sa.String(64), nullable=False, info={"meaning": "the node"}),
    _customer(),
    sa.Column("at", UTCDateTime, nullable=False, info={"meaning": "when"}),
    # entered | waiting | passed | sent | skipped | exited
    sa.Column("outcome", sa.String(16), nullable=False,
              info={"meaning": "entered, waiting, passed, sent, skipped or exited"}),
    sa.Column("detail", sa.String(200),  # exit reason, branch taken, message id …
              info={"meaning": "exit reason, branch taken, message id …"}),
    sa.Index(None, "workspace_id", "scenario_id", "node_id"),
    info={"area": "scenarios",
          "meaning": "Every node a run passed through and what happened there: per-node "
                     "statistics.",
          "updated": "appended by the scenario engine"},
)  # fmt: skip

scenario_inbox = sa.Table(
    "scenario_inbox",
    metadata,
    _ws(),
    # Things that may start, wake or end runs: events, segment changes, API calls.
    sa.Column("inbox_id", sa.Uuid, primary_key=True, info={"meaning": "entry id (time-ordered)"}),
    _customer(),
    sa.Column("kind", sa.String(16), nullable=False,  # event | segment | api
              info={"meaning": "event, segment or api"}),
    sa.Column("name", sa.String(200), nullable=False,  # event name, segment key, scenario key
              info={"meaning": "event name, segment key or scenario key"}),
    sa.Column("payload", JSONDoc, nullable=False,  # event properties; segment change
              info={"meaning": "event properties or the segment change"}),
    sa.Column("at", UTCDateTime, nullable=False, info={"meaning": "when it happened"}),
    sa.Index(None, "inbox_id"),  # drains take the oldest rows across workspaces
    info={"area": "scenarios",
          "meaning": "Things that may start, wake or end runs: events, segment changes, API calls.",
          "updated": "appended on ingest and segment changes; drained by the engine continuously"},
)  # fmt: skip

scenario_cursors = sa.Table(
    "scenario_cursors",
    metadata,
    _ws(),
    # How far the engine got through a stream or a calendar (segment signals, the last day a
    # date trigger ran, a schedule done), so each happens once.
    sa.Column("source", sa.String(100), primary_key=True,
              info={"meaning": "the stream or calendar"}),
    sa.Column("position", JSONDoc, nullable=False, info={"meaning": "how far it got"}),
    sa.Column("updated_at", UTCDateTime, nullable=False, info={"meaning": "last moved"}),
    info={"area": "scenarios",
          "meaning": "How far the engine got through a stream or a calendar, so each thing "
                     "happens once.",
          "updated": "by the scenario engine as it goes"},
)  # fmt: skip
from kizuna.store import tables_access as _access  # noqa: E402, F401
from kizuna.store import tables_campaigns as _campaigns  # noqa: E402, F401
from kizuna.store import tables_privacy as _privacy  # noqa: E402, F401
