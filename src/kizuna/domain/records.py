"""Typed records that every way into Kizuna produces: HTTP ingestion, file import, demo data.

Each model validates and normalizes once (emails lower-cased, phones to E.164,
postal codes to ``123-4567``, times to UTC); a ``pydantic.ValidationError``
names the field that broke a rule, which the edges turn into
:class:`kizuna.errors.Problem` rows.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from kizuna.clock import ensure_utc
from kizuna.domain import normalize
from kizuna.errors import InvalidInput

__all__ = [
    "Channel",
    "ConsentRecord",
    "ConsentStatus",
    "CustomerTraits",
    "Identifiers",
    "LineItem",
    "OrderChannel",
    "OrderRecord",
    "OrderStatus",
    "ProductRecord",
    "SubscriptionRecord",
    "SubscriptionStatus",
    "SuppressionReason",
    "SuppressionRecord",
]


def _rule(fn: Any) -> Any:
    """Wrap a normalizer so its InvalidInput surfaces as a pydantic field error."""

    def run(value: Any) -> Any:
        if value is None or value == "":
            return None
        try:
            return fn(str(value))
        except InvalidInput as exc:
            raise ValueError(exc.problems[0].message) from exc

    return run


def _utc(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return ensure_utc(value)
    try:
        return normalize.parse_datetime(value, "time")
    except InvalidInput as exc:
        raise ValueError(exc.problems[0].message) from exc


def _day(value: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        return normalize.parse_date(value, "date")
    except InvalidInput as exc:
        raise ValueError(exc.problems[0].message) from exc


def _text(value: Any) -> Any:
    if value is None:
        return None
    text = normalize.nfkc(str(value)) if not isinstance(value, str) else value.strip()
    return text or None


Email = Annotated[str | None, BeforeValidator(_rule(normalize.normalize_email))]
Phone = Annotated[str | None, BeforeValidator(_rule(normalize.normalize_phone))]
PostalCode = Annotated[str | None, BeforeValidator(_rule(normalize.normalize_postal_code))]
UtcTime = Annotated[datetime, BeforeValidator(_utc)]
OptionalUtcTime = Annotated[datetime | None, BeforeValidator(_utc)]
Day = Annotated[date | None, BeforeValidator(_day)]
Text = Annotated[str | None, BeforeValidator(_text)]
Id = Annotated[str, BeforeValidator(lambda v: str(v).strip() if v is not None else v)]


def _non_negative(value: float) -> float:
    if value < 0:
        raise ValueError("must not be negative")
    return value


Amount = Annotated[float, AfterValidator(_non_negative)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Channel(StrEnum):
    """Channels a customer can consent to and be reached on."""

    EMAIL = "email"
    LINE = "line"
    SMS = "sms"
    PUSH = "push"
    WEBHOOK = "webhook"
    DIRECT_MAIL = "direct_mail"
    PHONE = "phone"


class ConsentStatus(StrEnum):
    """Whether a customer agreed to marketing on a channel."""

    OPTED_IN = "opted_in"
    OPTED_OUT = "opted_out"


class OrderChannel(StrEnum):
    """Where an order was placed."""

    ONLINE = "online"
    STORE = "store"
    MARKETPLACE = "marketplace"


class OrderStatus(StrEnum):
    """Life of an order after it is placed."""

    PLACED = "placed"
    CANCELLED = "cancelled"
    RETURNED = "returned"


class SubscriptionStatus(StrEnum):
    """State of a subscription contract (定期購入)."""

    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"


class SuppressionReason(StrEnum):
    """Why an address must never receive marketing."""

    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    BLACKLIST = "blacklist"


class Identifiers(_Record):
    """Everything that can name a customer; at least one must be present."""

    user_id: Text = None  # the shop's customer id (Segment userId)
    anonymous_id: Text = None
    email: Email = None
    phone: Phone = None
    line_user_id: Text = None
    device_token: Text = None

    def present(self) -> dict[str, str]:
        """The identifiers that are set, by kind, strongest first."""
        values = {
            "user_id": self.user_id,
            "email": self.email,
            "phone": self.phone,
            "line_user_id": self.line_user_id,
            "device_token": self.device_token,
            "anonymous_id": self.anonymous_id,
        }
        return {kind: value for kind, value in values.items() if value}


class CustomerTraits(_Record):
    """Profile attributes; ``None`` leaves a stored value as it is."""

    email: Email = None
    phone: Phone = None
    last_name: Text = None
    first_name: Text = None
    last_name_kana: Text = None
    first_name_kana: Text = None
    gender: Text = None
    birthday: Day = None
    postal_code: PostalCode = None
    prefecture: Text = None
    city: Text = None
    address: Text = None
    membership_rank: Text = None
    registered_at: OptionalUtcTime = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class LineItem(_Record):
    """One line of an order."""

    sku: Id
    product_id: Text = None
    product_name: Text = None
    category: Text = None
    brand: Text = None
    quantity: int = Field(default=1, ge=1)
    unit_price: Amount = 0.0
    discount: Amount = 0.0
    coupon: Text = None
    is_sale: bool = False
    returned_quantity: int = Field(default=0, ge=0)


class OrderRecord(_Record):
    """An order identified by the shop's order id; re-sending it updates it in place."""

    order_id: Id = Field(min_length=1, max_length=128)
    customer: Identifiers
    ordered_at: UtcTime
    channel: OrderChannel = OrderChannel.ONLINE
    status: OrderStatus = OrderStatus.PLACED
    currency: str = Field(default="JPY", min_length=3, max_length=3)
    items: list[LineItem] = Field(default_factory=list)
    subtotal: Amount | None = None
    discount: Amount = 0.0
    shipping: Amount = 0.0
    tax: Amount = 0.0
    total: Amount | None = None
    refunded: Amount = 0.0
    coupon: Text = None
    store_id: Text = None
    cancelled_at: OptionalUtcTime = None
    returned_at: OptionalUtcTime = None

    @model_validator(mode="after")
    def _fill_totals(self) -> OrderRecord:
        lines = sum(i.unit_price * i.quantity - i.discount for i in self.items)
        if self.subtotal is None:
            object.__setattr__(self, "subtotal", float(lines))
        if self.total is None:
            total = (self.subtotal or 0.0) - self.discount + self.shipping + self.tax
            object.__setattr__(self, "total", float(max(total, 0.0)))
        return self


class ConsentRecord(_Record):
    """A consent decision with the evidence the Specified Electronic Mail Act asks for."""

    customer: Identifiers
    channel: Channel
    status: ConsentStatus
    occurred_at: UtcTime
    method: Text = None
    wording: Text = None
    source: Text = None
    ip: Text = None
    address: Text = None  # the email or number the consent covers, when known


class ProductRecord(_Record):
    """A catalogue entry (one SKU) with its stock."""

    sku: Id = Field(min_length=1, max_length=128)
    product_id: Text = None
    name: str = Field(min_length=1, max_length=300)
    category: Text = None
    brand: Text = None
    price: Amount | None = None
    cost: Amount | None = None
    stock: int | None = None
    url: Text = None
    image_url: Text = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class SubscriptionRecord(_Record):
    """A subscription contract (start, renew, cancel)."""

    subscription_id: Id = Field(min_length=1, max_length=128)
    customer: Identifiers
    plan: str = Field(min_length=1)
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE
    amount: Amount = 0.0
    interval_days: int = Field(default=30, ge=1)
    started_at: UtcTime
    renewed_at: OptionalUtcTime = None
    next_renewal_at: OptionalUtcTime = None
    cancelled_at: OptionalUtcTime = None


class SuppressionRecord(_Record):
    """An address that must not receive marketing, and why."""

    channel: Channel
    address: str = Field(min_length=1)
    reason: SuppressionReason
    note: Text = None
