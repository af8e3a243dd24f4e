"""Rows → typed records, one converter per kind.

A converter is fed rows in file order and hands back outcomes: an
:class:`Accepted` record with the lines it came from, or a :class:`Rejected`
set of lines with one reason each. Orders span several rows (one per line
item, order columns repeated); consecutive rows with the same order id become
one :class:`OrderRecord`, whose order columns come from its first row. A bad
line rejects its whole order, so no order is stored with lines missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from kizuna.domain.normalize import nfkc
from kizuna.domain.records import (
    ConsentRecord,
    CustomerTraits,
    Identifiers,
    ProductRecord,
)
from kizuna.ingest.files._mapping import IDENTIFIERS, ColumnMap
from kizuna.ingest.files._values import (
    RowError,
    describe_validation,
    ident,
    integer,
    number,
    when,
)

__all__ = [
    "Accepted",
    "Converter",
    "CustomerRow",
    "EventRow",
    "Rejected",
    "build",
    "identifiers",
    "make_converter",
    "synonym",
]

_EVENT_TYPES = {"track", "page", "screen", "identify", "group", "alias"}
_SYNONYMS = {
    "channel": {
        "メール": "email", "mail": "email", "e-mail": "email", "line": "line", "sms": "sms",
        "ショートメール": "sms", "プッシュ": "push", "dm": "direct_mail",
        "ダイレクトメール": "direct_mail",
        "電話": "phone", "店舗": "store", "実店舗": "store", "ec": "online", "オンライン": "online",
        "通販": "online", "モール": "marketplace",
    },
    "status": {
        "許可": "opted_in", "同意": "opted_in", "希望する": "opted_in", "配信する": "opted_in",
        "1": "opted_in", "true": "opted_in", "yes": "opted_in", "拒否": "opted_out",
        "希望しない": "opted_out", "配信しない": "opted_out", "停止": "opted_out",
        "0": "opted_out", "false": "opted_out", "no": "opted_out", "受注": "placed",
        "新規": "placed", "発送済": "placed", "完了": "placed", "キャンセル": "cancelled",
        "返品": "returned",
    },
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid record and the source lines it was built from."""

    lines: list[int]
    record: Any


@dataclass(frozen=True, slots=True)
class Rejected:
    """Source lines that will not be imported, each with its reason."""

    reasons: dict[int, str]


Outcome = Accepted | Rejected


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """A customers-file row: who, what to set, and when they registered."""

    ids: Identifiers
    traits: CustomerTraits
    at: datetime | None


@dataclass(frozen=True, slots=True)
class EventRow:
    """An events-file row, with a message id that is stable across re-imports."""

    ids: Identifiers
    name: str
    type: str
    occurred_at: datetime
    message_id: str
    properties: dict[str, Any] = field(default_factory=dict)


M = TypeVar("M", bound=BaseModel)


class Converter(Protocol):
    """Turns rows into outcomes; ``finish`` flushes whatever is still open."""

    def feed(self, line: int, values: dict[str, Any]) -> list[Outcome]:
        """Take one row's field values."""
        ...

    def finish(self) -> list[Outcome]:
        """Return outcomes still held back at the end of the file."""
        ...


def build(model: type[M], data: dict[str, Any], cm: ColumnMap) -> M:
    """Validate ``data`` into ``model``; raises RowError naming the source column."""
    try:
        return model(**data)
    except ValidationError as exc:
        raise RowError(describe_validation(exc, cm.header_of)) from None


def synonym(kind: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    key = nfkc(value).lower()
    return _SYNONYMS[kind].get(key, key)


def identifiers(v: dict[str, Any], cm: ColumnMap) -> Identifiers:
    data = {k: ident(v.get(k)) for k in IDENTIFIERS}
    if not any(data.values()):
        names = [cm.header_of(k) for k in IDENTIFIERS if k in cm.fields.values()]
        raise RowError(f"no customer identifier: {', '.join(names) or 'identifiers'} blank")
    try:
        return _identifiers(tuple(data.values()))
    except ValidationError as exc:
        raise RowError(describe_validation(exc, cm.header_of)) from None


@lru_cache(maxsize=16384)
def _identifiers(values: tuple[str | None, ...]) -> Identifiers:
    # Customers recur across rows; validating (email, phone …) once per distinct set is enough.
    return Identifiers(**dict(zip(IDENTIFIERS, values, strict=True)))


def _prefixed(v: dict[str, Any], prefix: str) -> dict[str, Any]:
    found = {k[len(prefix) :]: x for k, x in v.items() if k.startswith(prefix) and x is not None}
    nested = v.get(prefix.rstrip("."))
    return {**nested, **found} if isinstance(nested, dict) else found


def to_customer(v: dict[str, Any], cm: ColumnMap, tz: str) -> CustomerRow:
    """A customers row → identifiers + traits."""
    ids = identifiers(v, cm)
    names = ("last_name", "first_name", "last_name_kana", "first_name_kana", "gender",
             "postal_code", "prefecture", "city", "address", "membership_rank")  # fmt: skip
    data: dict[str, Any] = {n: ident(v.get(n)) for n in names}
    data["birthday"] = v.get("birthday")
    at = when(v.get("registered_at"), cm.header_of("registered_at"), "registered_at", tz)
    traits = build(
        CustomerTraits,
        {**data, "email": ids.email, "phone": ids.phone, "registered_at": at,
         "attributes": _prefixed(v, "attributes.")},
        cm,
    )  # fmt: skip
    return CustomerRow(ids, traits, at)


def to_product(v: dict[str, Any], cm: ColumnMap, tz: str) -> ProductRecord:
    """A products row → a catalogue entry."""
    h = cm.header_of
    data: dict[str, Any] = {
        n: ident(v.get(n)) for n in ("sku", "product_id", "category", "brand", "url", "image_url")
    }
    data["name"] = ident(v.get("name")) or ""
    data["price"] = number(v.get("price"), h("price"), "price")
    data["cost"] = number(v.get("cost"), h("cost"), "cost")
    data["stock"] = integer(v.get("stock"), h("stock"), "stock")
    data["attributes"] = _prefixed(v, "attributes.")
    return build(ProductRecord, data, cm)


def to_consent(v: dict[str, Any], cm: ColumnMap, tz: str) -> ConsentRecord:
    """A consents row → one consent decision with its evidence."""
    names = ("method", "wording", "source", "ip", "address")
    data: dict[str, Any] = {n: ident(v.get(n)) for n in names}
    data["customer"] = identifiers(v, cm)
    data["channel"] = synonym("channel", v.get("channel"))
    data["status"] = synonym("status", v.get("status"))
    data["occurred_at"] = when(v.get("occurred_at"), cm.header_of("occurred_at"), "occurred_at", tz)
    return build(ConsentRecord, data, cm)


def to_event(v: dict[str, Any], cm: ColumnMap, tz: str) -> EventRow:
    """An events row → a track (or other) event with a deterministic message id."""
    name = ident(v.get("event"))
    kind = (ident(v.get("type")) or "track").lower()
    if kind not in _EVENT_TYPES:
        raise RowError(f"column '{cm.header_of('type')}' (type): unknown event type {kind!r}")
    if not name and kind == "track":
        raise RowError(f"column '{cm.header_of('event')}' (event): a track event needs a name")
    at = when(v.get("occurred_at"), cm.header_of("occurred_at"), "occurred_at", tz)
    if at is None:
        raise RowError(f"column '{cm.header_of('occurred_at')}' (occurred_at): required")
    message_id = ident(v.get("message_id")) or "file-" + _digest(v)
    props = orjson.loads(orjson.dumps(_prefixed(v, "properties."), default=str))
    return EventRow(identifiers(v, cm), name or kind, kind, at, message_id[:100], props)


def _digest(values: dict[str, Any]) -> str:
    blob = orjson.dumps(values, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


class RowConverter:
    """One row, one record."""

    def __init__(
        self, fn: Callable[[dict[str, Any], ColumnMap, str], Any], cm: ColumnMap, tz: str
    ) -> None:
        self._fn, self._cm, self._tz = fn, cm, tz

    def feed(self, line: int, values: dict[str, Any]) -> list[Outcome]:
        """Convert one row now."""
        try:
            return [Accepted([line], self._fn(values, self._cm, self._tz))]
        except RowError as exc:
            return [Rejected({line: exc.reason})]

    def finish(self) -> list[Outcome]:
        """Nothing is held back."""
        return []


def make_converter(cm: ColumnMap, tz: str) -> Converter:
    """The converter for ``cm.kind``."""
    if cm.kind == "orders":
        from kizuna.ingest.files._orders import OrderAssembler

        return OrderAssembler(cm, tz)
    fns = {"customers": to_customer, "products": to_product, "consents": to_consent,
           "events": to_event}  # fmt: skip
    return RowConverter(fns[cm.kind], cm, tz)
