"""Customer profiles, identities, consent with evidence, suppressions and subscriptions.

Personal data goes through the same path as every other way in: a validated
:class:`~kizuna.domain.records.CustomerTraits` turned into encrypted columns by
:func:`kizuna.store.customers.trait_values`, and identities encrypted and hashed
by the workspace scope exactly as the identity resolver stores them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import numpy as np

from kizuna.demo.chunk import ANONYMOUS, BUYER, Chunk
from kizuna.demo.orders import OrderFacts
from kizuna.demo.people import draw_people
from kizuna.domain.records import Channel, CustomerTraits
from kizuna.store.consent import address_hash
from kizuna.store.customers import trait_values
from kizuna.store.tables import customers

__all__ = ["assign_ids", "build_profiles"]

_MASK128 = (1 << 128) - 1
_CUSTOMER_COLUMNS: dict[str, Any] = {c.name: None for c in customers.columns}
_EMAIL_IN = ("メールマガジンを受け取る（新商品・セール情報をお届けします）", "checkout_checkbox",
             "https://shop.example.jp/checkout")  # fmt: skip
_EMAIL_OUT = ("メールマガジンの配信を停止しました", "unsubscribe_link",
              "https://shop.example.jp/mail/unsubscribe")  # fmt: skip
_LINE_IN = ("LINE公式アカウントを友だち追加すると、お得な情報をお届けします", "line_friend_add",
            "line:official-account")  # fmt: skip
_LINE_OUT = ("LINE公式アカウントがブロックされました", "line_block", "line:webhook")
_SMS = ("SMSでお知らせ（発送・キャンペーン）を受け取る", "web_form",
        "https://shop.example.jp/account/notifications")  # fmt: skip


def assign_ids(chunk: Chunk) -> None:
    """Give the chunk's customers shop ids (known ones) and cookie ids (everyone)."""
    rng = chunk.rng
    cookies = (1 + (rng.random(chunk.size) < 0.4)).tolist()
    raw = rng.integers(0, 1 << 63, (chunk.size, 4), dtype=np.int64).tolist()
    for i in range(chunk.size):
        known = chunk.kind[i] != ANONYMOUS
        chunk.user_ids.append(f"C{chunk.first + i + 1:08d}" if known else None)
        bits = [(raw[i][2 * k] << 63 | raw[i][2 * k + 1]) & _MASK128 for k in range(cookies[i])]
        chunk.cookies.append([str(uuid.UUID(int=b)) for b in bits])


def _rank(spend: float) -> str:
    if spend >= 100_000:
        return "platinum"
    if spend >= 50_000:
        return "gold"
    return "silver" if spend >= 20_000 else "regular"


def _customer_row(chunk: Chunk, i: int, traits: dict[str, Any], attributes: dict[str, Any]) -> None:
    cal = chunk.cal
    row = dict(_CUSTOMER_COLUMNS)
    row.update(traits)
    row.update(
        workspace_id=chunk.workspace_id, customer_id=chunk.customer_ids[i],
        shop_customer_id=chunk.user_ids[i], attributes=attributes,
        first_seen_at=cal.at(chunk.seen_first[i]), last_seen_at=cal.at(chunk.seen_last[i]),
        updated_at=chunk.now,
    )  # fmt: skip
    chunk.table("customers").append(row)


def _identity(chunk: Chunk, i: int, kind: str, value: str, digest: bytes | None = None) -> None:
    chunk.table("identities").append({
        "workspace_id": chunk.workspace_id, "kind": kind,
        "value_hash": digest or chunk.cipher.lookup_hash(kind, value),
        "customer_id": chunk.customer_ids[i],
        "value_enc": chunk.cipher.encrypt(value),
        "first_seen_at": chunk.cal.at(chunk.seen_first[i]),
        "last_seen_at": chunk.cal.at(chunk.seen_last[i]),
    })  # fmt: skip


def _traits(chunk: Chunk, person: Any, registered: datetime, rank: str | None) -> CustomerTraits:
    # The generator emits normalized values (lower-case emails, E.164 phones), so
    # validation is skipped here; tests/unit/test_demo_model.py pins that it would pass.
    return CustomerTraits.model_construct(
        email=person.email, phone=person.phone, last_name=person.last_name,
        first_name=person.first_name, last_name_kana=person.last_name_kana,
        first_name_kana=person.first_name_kana, gender=person.gender, birthday=person.birthday,
        postal_code=person.postal_code, prefecture=person.prefecture, city=person.city,
        address=person.address, membership_rank=rank, registered_at=registered,
    )  # fmt: skip


def build_profiles(chunk: Chunk, facts: OrderFacts) -> None:
    """Append customers, identities, consents, suppressions and subscriptions rows."""
    rng = chunk.rng
    people = draw_people(
        rng, chunk.first, chunk.size, chunk.seed, chunk.cal.at(chunk.cal.end_day).date()
    )
    spend = np.bincount(facts.customer, np.where(facts.placed, facts.total, 0), chunk.size)
    has_line = (rng.random(chunk.size) < 0.3).tolist()
    line_raw = rng.integers(0, 1 << 62, (chunk.size, 2), dtype=np.int64).tolist()
    source = rng.choice(("instagram", "search", "line", "referral", "store"), chunk.size).tolist()
    kinds, spends = chunk.kind.tolist(), spend.tolist()
    for i in range(chunk.size):
        for cookie in chunk.cookies[i]:
            _identity(chunk, i, "anonymous_id", cookie)
        if kinds[i] == ANONYMOUS:
            _customer_row(chunk, i, {}, {"source": "demo"})
            continue
        person = people[i]
        rank = _rank(spends[i]) if kinds[i] == BUYER else None
        registered = chunk.cal.at(float(chunk.first_day[i]))
        values = trait_values(chunk.cipher, _traits(chunk, person, registered, rank))
        _customer_row(chunk, i, values, {"source": "demo", "acquisition": source[i]})
        _identity(chunk, i, "user_id", chunk.user_ids[i] or "")
        _identity(chunk, i, "email", person.email, values["email_hash"])
        if person.phone:
            _identity(chunk, i, "phone", person.phone, values["phone_hash"])
        line_id = f"U{line_raw[i][0]:016x}{line_raw[i][1]:016x}" if has_line[i] else None
        if line_id:
            _identity(chunk, i, "line_user_id", line_id)
        _consents(chunk, i, values, line_id, person)
    _subscriptions(chunk, facts)


def _consent(chunk: Chunk, i: int, channel: str, opted_in: bool, day: float,
             evidence: tuple[str, str, str], digest: bytes | None) -> None:  # fmt: skip
    at = chunk.cal.at(day)
    status = "opted_in" if opted_in else "opted_out"
    wording, method, source = evidence
    ws, now, cid = chunk.workspace_id, chunk.now, chunk.customer_ids[i]
    chunk.table("consent_events").append({
        "workspace_id": ws, "customer_id": cid, "consent_event_id": chunk.new_id(at),
        "channel": channel, "status": status, "occurred_at": at, "method": method,
        "wording": wording, "source": source, "ip": None, "address_hash": digest,
        "recorded_at": now,
    })  # fmt: skip
    latest = chunk.table("consents")
    if latest and latest[-1]["customer_id"] == cid and latest[-1]["channel"] == channel:
        latest.pop()
    latest.append({"workspace_id": ws, "customer_id": cid, "channel": channel, "status": status,
                   "changed_at": at, "updated_at": now})  # fmt: skip


def _later(chunk: Chunk, day: float) -> float:
    return day + float(chunk.rng.random()) * max(chunk.cal.end_day - day - 0.01, 0.0)


def _consents(chunk: Chunk, i: int, values: dict[str, Any], line_id: str | None,
              person: Any) -> None:  # fmt: skip
    rng, day = chunk.rng, float(chunk.first_day[i])
    draws = rng.random(6).tolist()
    email_in = draws[0] < 0.8
    _consent(chunk, i, "email", email_in, day, _EMAIL_IN if email_in else _EMAIL_OUT,
             values["email_hash"])  # fmt: skip
    if email_in and draws[1] < 0.12:
        _consent(chunk, i, "email", False, _later(chunk, day), _EMAIL_OUT, values["email_hash"])
    if line_id:
        digest = address_hash(chunk.cipher, Channel.LINE, line_id)
        _consent(chunk, i, "line", True, day, _LINE_IN, digest)
        if draws[2] < 0.2:
            _consent(chunk, i, "line", False, _later(chunk, day), _LINE_OUT, digest)
    if person.phone and draws[3] < 0.35:
        _consent(chunk, i, "sms", draws[4] < 0.6, day, _SMS, values["phone_hash"])
    if draws[5] < 0.028:
        reason = "hard_bounce" if draws[5] < 0.025 else "complaint"
        note = "550 5.1.1 user unknown" if reason == "hard_bounce" else "ISPからの苦情 (FBL)"
        chunk.table("suppressions").append({
            "workspace_id": chunk.workspace_id, "channel": "email",
            "address_hash": address_hash(chunk.cipher, Channel.EMAIL, person.email),
            "reason": reason, "customer_id": chunk.customer_ids[i], "note": note,
            "created_at": chunk.cal.at(_later(chunk, day)),
        })  # fmt: skip


_PLANS = {
    "supplements": ("定期便 マルチビタミン", 1_780.0, 30),
    "food": ("定期便 だしパック", 1_940.0, 60),
    "skincare": ("定期便 化粧水", 2_670.0, 45),
}


def _subscriptions(chunk: Chunk, facts: OrderFacts) -> None:
    rng, cal = chunk.rng, chunk.cal
    names = chunk.catalogue.category_names
    first_order = np.searchsorted(facts.customer, np.arange(chunk.size))
    for i in np.flatnonzero((chunk.kind == BUYER) & (rng.random(chunk.size) < 0.06)).tolist():
        plan = _PLANS.get(names[int(chunk.favourite[i])])
        if plan is None or first_order[i] >= len(facts.customer):
            continue
        start = float(facts.day[first_order[i]])
        cancelled = rng.random() < 0.45
        stop = _later(chunk, start) if cancelled else cal.end_day
        renewals = int((stop - start) // plan[2])
        renewed = start + renewals * plan[2]
        chunk.table("subscriptions").append({
            "workspace_id": chunk.workspace_id,
            "subscription_id": f"SUB-{chunk.number:05d}-{i:05d}",
            "customer_id": chunk.customer_ids[i],
            "plan": plan[0], "status": "cancelled" if cancelled else "active", "amount": plan[1],
            "interval_days": plan[2], "started_at": cal.at(start),
            "renewed_at": cal.at(renewed) if renewals else None,
            "next_renewal_at": None if cancelled else cal.at(renewed + plan[2]),
            "cancelled_at": cal.at(stop) if cancelled else None, "updated_at": chunk.now,
        })  # fmt: skip
