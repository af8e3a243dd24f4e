"""Segment tracking-spec messages: decode, validate and normalize them once, at the edge.

A request body becomes a list of :class:`Message` (ready for the pipeline) and
a list of :class:`~kizuna.errors.Problem` naming each rejected message by its
place (``batch[3].userId``). Limits follow Segment's: 32 KB per message, 500 KB
per batch, ``messageId`` of at most 100 characters.

Times are corrected for the device's clock skew as the spec says:
``occurred = receivedAt - (sentAt - timestamp)`` when both are known.

IMPORTANT: :func:`strip_personal` removes personal trait keys (email, phone,
names, kana, address, birthday, …) from whatever is stored in clear.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from kizuna.clock import ensure_utc
from kizuna.domain.records import CustomerTraits, Identifiers
from kizuna.errors import InvalidInput, Problem
from kizuna.ingest.ecommerce import CommerceAction, parse_commerce

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_MESSAGE_BYTES",
    "MESSAGE_TYPES",
    "Message",
    "ParsedBatch",
    "SegmentMessage",
    "decode_body",
    "parse_batch",
    "parse_single",
    "strip_personal",
    "traits_of",
]

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_MESSAGE_ID = 100
MESSAGE_TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})


def _id(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return None if value is None else value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return value


def _doc(value: Any) -> Any:
    return {} if value is None else value


def _time(value: Any) -> Any:
    return None if value == "" else value


SegmentId = Annotated[Annotated[str, Field(max_length=200)] | None, BeforeValidator(_id)]
Doc = Annotated[dict[str, Any], BeforeValidator(_doc)]
Time = Annotated[datetime | None, BeforeValidator(_time)]


class SegmentMessage(BaseModel):
    """One message of the Segment spec (identify, track, page, screen, group, alias)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    type: str
    message_id: Annotated[str | None, BeforeValidator(_id)] = Field(None, alias="messageId")
    user_id: SegmentId = Field(None, alias="userId")
    anonymous_id: SegmentId = Field(None, alias="anonymousId")
    previous_id: SegmentId = Field(None, alias="previousId")
    group_id: SegmentId = Field(None, alias="groupId")
    event: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=200)
    properties: Doc = Field(default_factory=dict)
    traits: Doc = Field(default_factory=dict)
    context: Doc = Field(default_factory=dict)
    timestamp: Time = None
    original_timestamp: Time = Field(None, alias="originalTimestamp")
    sent_at: Time = Field(None, alias="sentAt")


@dataclass(slots=True)
class Message:
    """A validated message, with everything the pipeline needs already worked out."""

    index: int
    raw: SegmentMessage
    message_id: str
    identifiers: Identifiers
    occurred_at: datetime
    traits: CustomerTraits | None = None
    commerce: CommerceAction | None = None


@dataclass(slots=True)
class ParsedBatch:
    """The accepted messages of a request and the problems of the rejected ones."""

    messages: list[Message]
    problems: list[Problem]


def decode_body(raw: bytes, encoding: str | None, limit: int) -> Any:
    """Gunzip (when asked) and parse a JSON body; InvalidInput when over ``limit`` or malformed."""
    if encoding and encoding.strip().lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise InvalidInput(Problem("invalid_gzip", f"body is not valid gzip ({exc})")) from exc
    if len(raw) > limit:
        raise InvalidInput(
            Problem("too_large", f"body is over the {limit // 1024} KB limit", "body")
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(Problem("malformed_json", f"body is not valid JSON ({exc})")) from exc


def parse_single(payload: Any, kind: str, received_at: datetime) -> ParsedBatch:
    """Validate the body of ``/v1/<kind>``; the path decides the type."""
    if not isinstance(payload, dict):
        return ParsedBatch([], [Problem("invalid_body", "body must be a JSON object", "body")])
    return _parse_all([{**payload, "type": kind}], "", {}, received_at)


def parse_batch(payload: Any, received_at: datetime) -> ParsedBatch:
    """Validate the body of ``/v1/batch``: each message on its own, batch-level fields shared."""
    if not isinstance(payload, dict):
        return ParsedBatch([], [Problem("invalid_body", "body must be a JSON object", "body")])
    items = payload.get("batch")
    if not isinstance(items, list):
        return ParsedBatch([], [Problem("invalid_batch", "batch must be a list", "batch")])
    shared = {k: payload[k] for k in ("sentAt", "context") if payload.get(k) is not None}
    return _parse_all(items, "batch", shared, received_at)


def _parse_all(
    items: list[Any], prefix: str, shared: dict[str, Any], received_at: datetime
) -> ParsedBatch:
    messages: list[Message] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"{prefix}[{index}]" if prefix else ""
        try:
            message = _parse_one(item, index, where, shared, received_at)
        except InvalidInput as exc:
            problems.extend(exc.problems)
            continue
        if message.message_id not in seen:  # a repeat within one batch is a retry too
            seen.add(message.message_id)
            messages.append(message)
    return ParsedBatch(messages, problems)


def _field(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _problem(where: str, name: str, code: str, message: str) -> InvalidInput:
    return InvalidInput(Problem(code, message, _field(where, name)))


def _parse_one(
    item: Any, index: int, where: str, shared: dict[str, Any], received_at: datetime
) -> Message:
    if not isinstance(item, dict):
        raise _problem(where, "", "invalid_message", "each message must be a JSON object")
    if len(orjson.dumps(item)) > MAX_MESSAGE_BYTES:
        raise InvalidInput(Problem("too_large", "message is over the 32 KB limit", where or "body"))
    if item.get("type") not in MESSAGE_TYPES:
        raise _problem(where, "type", "unknown_type", f"unknown type {item.get('type')!r}")
    if shared:
        item = _with_shared(item, shared)
    try:
        raw = SegmentMessage.model_validate(item)
    except ValidationError as exc:
        raise InvalidInput([_from_pydantic(where, err) for err in exc.errors()]) from exc
    _check_required(raw, where)
    message_id = raw.message_id or str(uuid.uuid4())
    if len(message_id) > MAX_MESSAGE_ID:
        raise _problem(where, "messageId", "too_long", "messageId is over 100 characters")
    identifiers, traits = _identity_of(raw, where)
    occurred_at = _occurred_at(raw, received_at)
    commerce = None
    if raw.type == "track" and raw.event:
        commerce = _commerce_of(raw, identifiers, occurred_at, where)
    return Message(index, raw, message_id, identifiers, occurred_at, traits, commerce)


def _with_shared(item: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    merged = dict(item)
    if "sentAt" in shared and not merged.get("sentAt"):
        merged["sentAt"] = shared["sentAt"]
    if isinstance(shared.get("context"), dict):
        own = merged.get("context")
        merged["context"] = {**shared["context"], **(own if isinstance(own, dict) else {})}
    return merged


def _from_pydantic(where: str, err: Any) -> Problem:
    aliases = {f: (i.alias or f) for f, i in SegmentMessage.model_fields.items()}
    loc = [aliases.get(str(p), str(p)) if n == 0 else str(p) for n, p in enumerate(err["loc"])]
    return Problem("invalid_field", str(err["msg"]), _field(where, ".".join(loc)))


def _check_required(raw: SegmentMessage, where: str) -> None:
    if raw.type == "alias":
        if not raw.user_id:
            raise _problem(where, "userId", "missing", "alias needs userId")
        if not raw.previous_id:
            raise _problem(where, "previousId", "missing", "alias needs previousId")
        return
    if not raw.user_id and not raw.anonymous_id:
        raise _problem(where, "userId", "missing", "userId or anonymousId is required")
    if raw.type == "track" and not raw.event:
        raise _problem(where, "event", "missing", "track needs an event name")
    if raw.type == "group" and not raw.group_id:
        raise _problem(where, "groupId", "missing", "group needs groupId")


def _identity_of(raw: SegmentMessage, where: str) -> tuple[Identifiers, CustomerTraits | None]:
    # Every value is already normalized (ids stripped by SegmentId, email and phone by
    # CustomerTraits), so the records are built without validating them a second time.
    if raw.type == "alias":
        return Identifiers.model_construct(user_id=raw.user_id), None
    if raw.type != "identify":
        ids = Identifiers.model_construct(user_id=raw.user_id, anonymous_id=raw.anonymous_id)
        return ids, None
    traits = traits_of(raw.traits, _field(where, "traits"))
    ids = Identifiers.model_construct(
        user_id=raw.user_id, anonymous_id=raw.anonymous_id, email=traits.email, phone=traits.phone
    )
    return ids, traits


def _occurred_at(raw: SegmentMessage, received_at: datetime) -> datetime:
    device = raw.original_timestamp or raw.timestamp
    if device is not None and raw.sent_at is not None:
        return received_at - (ensure_utc(raw.sent_at) - ensure_utc(device))
    stamp = raw.timestamp or raw.original_timestamp
    return ensure_utc(stamp) if stamp is not None else received_at


def _commerce_of(
    raw: SegmentMessage, ids: Identifiers, at: datetime, where: str
) -> CommerceAction | None:
    try:
        return parse_commerce(str(raw.event), raw.properties, ids, at)
    except InvalidInput as exc:
        raise InvalidInput(
            [
                Problem(p.code, p.message, _field(where, p.field or "properties"))
                for p in exc.problems
            ]
        ) from exc


# --- traits and personal data ------------------------------------------------------------

_TRAIT_NAMES = {
    "email": "email", "phone": "phone", "firstname": "first_name", "lastname": "last_name",
    "firstnamekana": "first_name_kana", "lastnamekana": "last_name_kana",
    "kanafirstname": "first_name_kana", "kanalastname": "last_name_kana", "gender": "gender",
    "birthday": "birthday", "createdat": "registered_at", "membershiprank": "membership_rank",
    "rank": "membership_rank", "postalcode": "postal_code", "prefecture": "prefecture",
    "city": "city",
}  # fmt: skip
# IMPORTANT: keys (lower-cased, without '_' and '-') never stored in clear outside the profile.
_PERSONAL = frozenset({
    "email", "phone", "phonenumber", "mobile", "tel", "firstname", "lastname", "name", "fullname",
    "username", "firstnamekana", "lastnamekana", "kanafirstname", "kanalastname", "namekana",
    "kana", "address", "street", "streetaddress", "address1", "address2", "postalcode", "zip",
    "zipcode", "birthday", "birthdate", "dateofbirth", "dob",
})  # fmt: skip


def _norm_key(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def strip_personal(doc: dict[str, Any], keep: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A copy of ``doc`` without personal keys, at any depth (``context.traits`` too).

    ``keep`` names keys that are not personal where ``doc`` comes from: in event
    properties ``name`` is a product's or page's name, not a person's.
    """
    clean: dict[str, Any] = {}
    for key, value in doc.items():
        if _norm_key(key) in _PERSONAL and key not in keep:
            continue
        if isinstance(value, dict):
            value = strip_personal(value, keep)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            value = [strip_personal(v, keep) if isinstance(v, dict) else v for v in value]
        clean[key] = value
    return clean


def _address_fields(address: Any) -> dict[str, Any]:
    if isinstance(address, str):
        return {"address": address}
    if not isinstance(address, dict):
        return {}
    found: dict[str, Any] = {}
    for key, value in address.items():
        name = _norm_key(key)
        if name in ("postalcode", "zip", "zipcode"):
            found["postal_code"] = value
        elif name in ("state", "prefecture", "region"):
            found["prefecture"] = value
        elif name == "city":
            found["city"] = value
        elif name in ("street", "line1", "address1"):
            found["address"] = value
    return found


def traits_of(traits: dict[str, Any], where: str = "traits") -> CustomerTraits:
    """Map Segment trait names to profile traits; unknown, non-personal ones go to attributes."""
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    attributes: dict[str, Any] = {}
    for key, value in traits.items():
        name = _norm_key(key)
        if name == "address":
            found = _address_fields(value)
            values.update(found)
            source.update(dict.fromkeys(found, f"{key}"))
        elif name in _TRAIT_NAMES:
            values[_TRAIT_NAMES[name]] = value
            source[_TRAIT_NAMES[name]] = key
        elif name not in _PERSONAL and value is not None:
            attributes[key] = value
    try:
        return CustomerTraits(**values, attributes=attributes)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            name = str(e["loc"][0]) if e["loc"] else ""
            field = f"{where}.{source.get(name, name)}" if name else where
            problems.append(Problem("invalid_trait", str(e["msg"]), field))
        raise InvalidInput(problems) from exc
