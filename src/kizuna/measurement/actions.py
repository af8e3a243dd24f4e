"""What the public tracking, unsubscribe and preference routes do, behind the HTTP edge.

Every function verifies its token first (InvalidInput for a forged, truncated,
wrong-kind or expired token) and only then touches the store. Messages sent
as tests (``source_kind == "test"``) go to seed addresses on behalf of a
sample customer: their opens, clicks and unsubscribes change nothing about
that customer.

Events written here: "Message Opened" (properties ``machine``,
``machine_reason``; a person's opens at most once an hour per message, a
machine's once per message), "Message Clicked" (``url``, ``machine``; once per
URL per message and kind of visitor) and "Unsubscribed" (``channel``,
``method``). Neither the IP address nor the user agent is stored with them;
the IP goes only into consent evidence, where the law asks for it.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy.engine import Connection

from kizuna.delivery.settings import DeliverySettings, load_delivery_settings
from kizuna.errors import InvalidInput, NotFound, Problem
from kizuna.measurement.tokens import Token, TokenKind, tokens_for
from kizuna.measurement.tracking import Verdict, classify_request, is_trackable
from kizuna.store.database import Database
from kizuna.store.messages import MessageEvent, MessageRecord, get_message, record_message_events
from kizuna.store.preferences import (
    ConsentEvidence,
    CustomerPreferences,
    read_preferences,
    set_channel_consents,
    set_preferences,
)
from kizuna.store.scope import Scope
from kizuna.store.workspaces import get_workspace

__all__ = [
    "FORM_LIFETIME",
    "PreferenceView",
    "UnsubscribeView",
    "Visit",
    "follow_click",
    "preference_view",
    "record_open",
    "save_preference_form",
    "unsubscribe",
    "unsubscribe_view",
]

FORM_LIFETIME = timedelta(hours=12)  # how long a preference form may sit open before saving


@dataclass(frozen=True, slots=True)
class Visit:
    """Who asked: what the HTTP edge knows about the request."""

    method: str = "GET"
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class UnsubscribeView:
    """What the unsubscribe page shows."""

    sender: str
    contact: str
    channel: str
    address: str | None  # masked
    preferences_url: str
    test: bool = False
    done: bool = False
    already: bool = False


@dataclass(frozen=True, slots=True)
class PreferenceView:
    """What the preference centre shows."""

    sender: str
    contact: str
    preferences: CustomerPreferences
    topics: Sequence[tuple[str, str, str]]  # (key, name_ja, name_en)
    nonce: str
    saved: bool = False
    test: bool = False  # reached from a test message: nothing is saved


def _verify(db: Database, token: str, kind: TokenKind) -> Token:
    return tokens_for(db.cipher).verify(token, kind, db.clock.now())


def _message(scope: Scope, message_id: uuid.UUID) -> MessageRecord | None:
    try:
        return get_message(scope, message_id)
    except NotFound:
        return None


def _record(
    scope: Scope, message: MessageRecord, name: str, props: dict[str, object], dedupe: str
) -> None:
    event = MessageEvent(message.message_id, name, scope.now, props, dedupe)
    record_message_events(scope, [event])


def _machine_props(verdict: Verdict) -> dict[str, object]:
    props: dict[str, object] = {"machine": verdict.machine}
    if verdict.reason:
        props["machine_reason"] = verdict.reason
    return props


def record_open(db: Database, token: str, visit: Visit) -> None:
    """Record an open pixel load; unknown messages and HEAD requests record nothing."""
    claims = _verify(db, token, TokenKind.OPEN)
    if visit.method == "HEAD":
        return
    with db.write() as conn:
        scope = Scope(conn, db.cipher, claims.workspace_id, db.clock.now())
        message = _message(scope, claims.subject_id)
        if message is None or message.source_kind == "test":
            return
        verdict = classify_request(visit.user_agent, visit.ip, message.sent_at, scope.now)
        # Refreshes and re-reads add at most one row an hour; all machine loads count once.
        bucket = "machine" if verdict.machine else f"person:{scope.now:%Y-%m-%dT%H}"
        _record(scope, message, "Message Opened", _machine_props(verdict), f"open:{bucket}")


def follow_click(db: Database, token: str, visit: Visit) -> str:
    """The signed destination of a click (recorded once per URL); never anything else."""
    claims = _verify(db, token, TokenKind.CLICK)
    url = claims.extra
    # IMPORTANT: the redirect target comes only from the signed token, and only http(s).
    if not is_trackable(url):
        raise InvalidInput(Problem("invalid_token", "this link is not valid", "token"))
    if visit.method == "HEAD":
        return url
    with db.write() as conn:
        scope = Scope(conn, db.cipher, claims.workspace_id, db.clock.now())
        message = _message(scope, claims.subject_id)
        if message is not None and message.source_kind != "test":
            verdict = classify_request(
                visit.user_agent, visit.ip, message.sent_at, scope.now, prefetch_window=False
            )
            who = "machine" if verdict.machine else "person"
            props = {"url": url, **_machine_props(verdict)}
            _record(scope, message, "Message Clicked", props, f"click:{who}:{url}")
    return url


def _sender(scope: Scope, settings: DeliverySettings) -> tuple[str, str]:
    name = settings.sender.name or get_workspace(scope.conn, scope.workspace_id).name
    return name, settings.sender.contact


def _preferences_url(db: Database, settings: DeliverySettings, message: MessageRecord) -> str:
    token = tokens_for(db.cipher).sign(
        TokenKind.PREFERENCES, message.workspace_id, message.customer_id, message.message_id.hex
    )
    return f"{settings.public_url.rstrip('/')}/p/{token}"


def _unsubscribe_view(db: Database, scope: Scope, message: MessageRecord) -> UnsubscribeView:
    settings = load_delivery_settings(scope.conn, scope.workspace_id)
    sender, contact = _sender(scope, settings)
    prefs = read_preferences(scope, message.customer_id)
    return UnsubscribeView(
        sender=sender,
        contact=contact,
        channel=message.channel,
        address=prefs.addresses.get(message.channel),
        preferences_url=_preferences_url(db, settings, message),
        test=message.source_kind == "test",
        already=prefs.channels.get(message.channel) == "opted_out",
    )


def _unsubscribe_scope(
    db: Database, claims: Token, conn: Connection
) -> tuple[Scope, MessageRecord]:
    scope = Scope(conn, db.cipher, claims.workspace_id, db.clock.now())
    return scope, get_message(scope, claims.subject_id)


def unsubscribe_view(db: Database, token: str) -> UnsubscribeView:
    """The confirmation page's content; changes nothing (mail scanners prefetch GETs)."""
    claims = _verify(db, token, TokenKind.UNSUBSCRIBE)
    with db.read() as conn:
        scope, message = _unsubscribe_scope(db, claims, conn)
        return _unsubscribe_view(db, scope, message)


def unsubscribe(
    db: Database,
    token: str,
    method: str,
    wording: Callable[[UnsubscribeView], str],
    ip: str | None,
) -> UnsubscribeView:
    """Opt the message's customer out of its channel at once, with evidence (RFC 8058 POST).

    ``wording`` gives the text the person saw, from what the page showed them.
    """
    claims = _verify(db, token, TokenKind.UNSUBSCRIBE)
    with db.write() as conn:
        scope, message = _unsubscribe_scope(db, claims, conn)
        view = _unsubscribe_view(db, scope, message)
        if view.test:
            return replace(view, done=True)
        evidence = ConsentEvidence(method, wording(view), str(message.message_id), ip)
        choice = {message.channel: False}
        address = {message.channel: message.address_hash}
        if set_channel_consents(scope, message.customer_id, choice, evidence, address):
            props: dict[str, object] = {"channel": message.channel, "method": method}
            _record(scope, message, "Unsubscribed", props, "")
        return replace(view, done=True)


def _nonce(db: Database, claims: Token) -> str:
    return tokens_for(db.cipher).sign(
        TokenKind.FORM,
        claims.workspace_id,
        claims.subject_id,
        secrets.token_hex(8),
        db.clock.now() + FORM_LIFETIME,
    )


def _preference_view(
    db: Database, scope: Scope, claims: Token, *, saved: bool = False
) -> PreferenceView:
    settings = load_delivery_settings(scope.conn, scope.workspace_id)
    sender, contact = _sender(scope, settings)
    topics = [(t.key, t.name_ja, t.name_en) for t in settings.topics]
    prefs = read_preferences(scope, claims.subject_id)
    message = _source_message(scope, claims)
    test = message is not None and message.source_kind == "test"
    return PreferenceView(sender, contact, prefs, topics, _nonce(db, claims), saved, test)


def preference_view(db: Database, token: str) -> PreferenceView:
    """The preference centre's content for the customer the token names."""
    claims = _verify(db, token, TokenKind.PREFERENCES)
    with db.read() as conn:
        scope = Scope(conn, db.cipher, claims.workspace_id, db.clock.now())
        return _preference_view(db, scope, claims)


def _check_nonce(db: Database, claims: Token, nonce: str) -> None:
    form = _verify(db, nonce, TokenKind.FORM)
    # IMPORTANT: a nonce from another customer's (or workspace's) page is no nonce at all.
    if (form.workspace_id, form.subject_id) != (claims.workspace_id, claims.subject_id):
        raise InvalidInput(Problem("invalid_token", "this form is not valid", "nonce"))


def _source_message(scope: Scope, claims: Token) -> MessageRecord | None:
    try:
        message_id = uuid.UUID(hex=claims.extra) if claims.extra else None
    except ValueError:
        return None
    return None if message_id is None else _message(scope, message_id)


def _save(
    scope: Scope,
    claims: Token,
    view: PreferenceView,
    form: Mapping[str, Sequence[str]],
    evidence: ConsentEvidence,
) -> dict[str, str]:
    """Write the form's choices; returns the channels whose consent changed."""
    ticked_channels, ticked_topics = set(form.get("channel", ())), set(form.get("topic", ()))
    channels = {c: c in ticked_channels for c in view.preferences.channels}
    changed = set_channel_consents(scope, claims.subject_id, channels, evidence)
    topics = {key: key in ticked_topics for key, _, _ in view.topics}
    set_preferences(scope, claims.subject_id, topics, evidence.source)
    return changed


def save_preference_form(
    db: Database,
    token: str,
    form: Mapping[str, Sequence[str]],
    wording: Callable[[PreferenceView], str],
    ip: str | None,
) -> PreferenceView:
    """Save the preference form: channel consents with evidence and topic subscriptions.

    Boxes left unticked are choices too (opt out, leave the topic), for the
    channels and topics the page showed. The form's signed nonce must belong
    to the same customer's page (InvalidInput otherwise).
    """
    claims = _verify(db, token, TokenKind.PREFERENCES)
    _check_nonce(db, claims, (form.get("nonce") or [""])[0])
    with db.write() as conn:
        scope = Scope(conn, db.cipher, claims.workspace_id, db.clock.now())
        before = _preference_view(db, scope, claims)
        if before.test:
            return replace(before, saved=True)
        message = _source_message(scope, claims)
        source = str(message.message_id) if message else "preference centre"
        evidence = ConsentEvidence("preference centre", wording(before), source, ip)
        changed = _save(scope, claims, before, form, evidence)
        for channel in (c for c, status in changed.items() if status == "opted_out"):
            if message is not None:
                props: dict[str, object] = {"channel": channel, "method": "preference centre"}
                _record(scope, message, "Unsubscribed", props, f"preferences:{channel}")
        return _preference_view(db, scope, claims, saved=True)
