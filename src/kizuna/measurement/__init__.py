"""Measurement: tracking, unsubscribes, attribution, metrics, uplift and reports.

``tokens`` signs what links carry, ``tracking`` instruments outgoing HTML and
builds unsubscribe links and headers (used by the send pipeline), ``actions``
is what the public routes in ``kizuna.api.tracking`` do, ``hosted`` renders
their pages. ``attribution`` credits orders to the last message touch and records
control-group outcomes; ``metrics`` aggregates sends, opens, clicks and
conversions in SQL; ``uplift`` compares treatment with control and variants with
each other; ``factors`` finds where a campaign or scenario falls behind the
workspace's medians; ``report`` assembles it all and ``plots`` draws it.
"""

from __future__ import annotations

from kizuna.measurement.tokens import Token, TokenKind, Tokens, tokens_for
from kizuna.measurement.tracking import (
    LIST_UNSUBSCRIBE_POST,
    UnsubscribeLinks,
    classify_request,
    instrument_html,
    unsubscribe_links,
    unsubscribe_token_from_subject,
)

__all__ = [
    "LIST_UNSUBSCRIBE_POST",
    "Token",
    "TokenKind",
    "Tokens",
    "UnsubscribeLinks",
    "classify_request",
    "instrument_html",
    "tokens_for",
    "unsubscribe_links",
    "unsubscribe_token_from_subject",
]
