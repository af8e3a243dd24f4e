"""Measurement: open and click tracking, unsubscribes and the preference centre.

``tokens`` signs what links carry, ``tracking`` instruments outgoing HTML and
builds unsubscribe links and headers (used by the send pipeline), ``actions``
is what the public routes in ``kizuna.api.tracking`` do, ``hosted`` renders
their pages. Attribution, uplift and A/B statistics join this package later.
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
