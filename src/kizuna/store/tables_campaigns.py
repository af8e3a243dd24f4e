"""Campaigns, their frozen audiences, and the attribution of orders to messages.

A campaign's audience is frozen into ``campaign_recipients`` at send time: who
was targeted, who was held out as the control group, who got which variant.
The attribution job fills in what each recipient went on to do (conversions and
revenue within the measurement window), so a report is one scan of one table.
``attributions`` records, once per order, the message it is credited to (last
click, open or delivery within its window), and per held-out group the orders
that count as the control group's outcome.
"""

from __future__ import annotations

import sqlalchemy as sa

from kizuna.store.tables import Money, _ws, metadata
from kizuna.store.types import JSONDoc, UTCDateTime

__all__ = ["CAMPAIGN_STATUSES", "attributions", "campaign_recipients", "campaigns"]

# draft → awaiting_approval → approved → scheduled → sending → sent; or cancelled before
# sent; failed: the send could not be made (the reason is in ``checks.send_error``)
CAMPAIGN_STATUSES = (
    "draft",
    "awaiting_approval",
    "approved",
    "scheduled",
    "sending",
    "sent",
    "cancelled",
    "failed",
)
_ONE_MESSAGE = sa.text("kind = 'message'")


campaigns = sa.Table(
    "campaigns",
    metadata,
    _ws(),
    sa.Column("campaign_id", sa.Uuid, primary_key=True, info={"meaning": "campaign id"}),
    sa.Column("key", sa.String(64), nullable=False,
              info={"meaning": "the designer's handle, unique per workspace"}),
    sa.Column("name", sa.String(200), nullable=False, info={"meaning": "display name"}),
    sa.Column("status", sa.String(24), nullable=False,
              info={"meaning": "draft, awaiting_approval, approved, scheduled, sending, sent, "
                               "cancelled or failed"}),
    sa.Column("spec", JSONDoc, nullable=False,
              info={"meaning": "the definition: segment, channel, variants and weights, control "
                               "percentage, schedule, goal and attribution windows"}),
    sa.Column("checks", JSONDoc, nullable=False,
              info={"meaning": "the last pre-send check: problems and warnings, with numbers"}),
    sa.Column("created_by", sa.String(200), nullable=False, info={"meaning": "who created it"}),
    sa.Column("created_at", UTCDateTime, nullable=False, info={"meaning": "when created"}),
    sa.Column("submitted_by", sa.String(200), info={"meaning": "who asked for approval"}),
    sa.Column("approved_by", sa.String(200), info={"meaning": "who approved the production send"}),
    sa.Column("approved_at", UTCDateTime, info={"meaning": "when approved"}),
    sa.Column("send_at", UTCDateTime,
              info={"meaning": "when it sends (UTC; the first local-time slot for per-customer "
                               "schedules)"}),
    sa.Column("frozen_at", UTCDateTime,
              info={"meaning": "when the audience was frozen (the start of every measurement "
                               "window)"}),
    sa.Column("targeted", sa.Integer, info={"meaning": "customers in the frozen audience"}),
    sa.Column("held_out", sa.Integer, info={"meaning": "of them, held out as the control group"}),
    sa.Column("updated_at", UTCDateTime, nullable=False, info={"meaning": "last change"}),
    sa.UniqueConstraint("workspace_id", "key"),
    sa.Index(None, "status", "send_at"),  # the worker finds due campaigns across workspaces
    info={"area": "campaigns",
          "meaning": "One-shot campaigns: definition, approval and the frozen audience's size.",
          "updated": "by scenario designers (save, submit, approve, cancel) and the worker "
                     "(freeze, send)"},
)  # fmt: skip

campaign_recipients = sa.Table(
    "campaign_recipients",
    metadata,
    _ws(),
    sa.Column("campaign_id", sa.Uuid, primary_key=True, info={"meaning": "the campaign"}),
    sa.Column("customer_id", sa.Uuid, primary_key=True,
              info={"meaning": "the customer (moved to the survivor on a merge)"}),
    sa.Column("held_out", sa.Boolean, nullable=False,
              info={"meaning": "in the control group: recorded, never sent"}),
    sa.Column("variant", sa.String(64),
              info={"meaning": "the content variant drawn (also for the held out: what they "
                               "would have got)"}),
    sa.Column("message_id", sa.Uuid, info={"meaning": "the message queued for them"}),
    sa.Column("send_at", UTCDateTime, info={"meaning": "when their message is due"}),
    sa.Column("converted_at", UTCDateTime,
              info={"meaning": "their first conversion within the measurement window"}),
    sa.Column("conversions", sa.Integer, nullable=False,
              info={"meaning": "conversions within the measurement window"}),
    sa.Column("revenue", Money, nullable=False,
              info={"meaning": "revenue of those conversions (JPY, net of refunds)"}),
    sa.Index(None, "workspace_id", "customer_id"),
    info={"area": "campaigns",
          "meaning": "A campaign's audience, frozen at send time: who was targeted, held out, "
                     "got which variant, and what they did next.",
          "updated": "written once when the audience is frozen; outcomes by the attribution "
                     "job"},
)  # fmt: skip

attributions = sa.Table(
    "attributions",
    metadata,
    _ws(),
    sa.Column("attribution_id", sa.Uuid, primary_key=True, info={"meaning": "id"}),
    sa.Column("conversion_key", sa.String(200), nullable=False,
              info={"meaning": "what converted: 'order:<order id>' or 'event:<event id>'"}),
    sa.Column("customer_id", sa.Uuid, nullable=False,
              info={"meaning": "the customer (moved to the survivor on a merge)"}),
    sa.Column("kind", sa.String(16), nullable=False,
              info={"meaning": "message (credited to one message, once per conversion) or "
                               "control (a held-out customer's conversion)"}),
    sa.Column("source_kind", sa.String(16), nullable=False,
              info={"meaning": "scenario, campaign, test or api"}),
    sa.Column("source_id", sa.String(64), info={"meaning": "the scenario or campaign"}),
    sa.Column("step", sa.String(64), info={"meaning": "the scenario node that sent it"}),
    sa.Column("variant", sa.String(64), info={"meaning": "the A/B variant"}),
    sa.Column("channel", sa.String(16), info={"meaning": "the message's channel"}),
    sa.Column("message_id", sa.Uuid, info={"meaning": "the message credited (none for control)"}),
    sa.Column("touch", sa.String(16),
              info={"meaning": "click, open or delivery: the interaction that earned the credit"}),
    sa.Column("revenue", Money, nullable=False, info={"meaning": "the conversion's revenue (JPY)"}),
    sa.Column("converted_at", UTCDateTime, nullable=False, info={"meaning": "when it converted"}),
    sa.Column("attributed_at", UTCDateTime, nullable=False, info={"meaning": "when recorded"}),
    sa.UniqueConstraint("workspace_id", "conversion_key", "kind", "source_kind", "source_id",
                        name="uq_attributions_conversion"),
    # An order is credited to one message at most: never counted twice.
    sa.Index(
        "uq_attributions_one_message",
        "workspace_id",
        "conversion_key",
        unique=True,
        sqlite_where=_ONE_MESSAGE,
        postgresql_where=_ONE_MESSAGE,
    ),
    sa.Index("ix_attributions_source", "workspace_id", "source_kind", "source_id", "converted_at"),
    info={"area": "measurement",
          "meaning": "Orders and goal events credited to the last message received, opened or "
                     "clicked within its window, and held-out customers' conversions.",
          "updated": "by the attribution job (worker), as orders and goal events arrive"},
)  # fmt: skip
