"""Writing profile traits, encrypting personal fields and keeping their lookup hashes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa

from kizuna.domain.records import CustomerTraits
from kizuna.security.pii import PiiCipher
from kizuna.store.scope import Scope
from kizuna.store.tables import customers

__all__ = ["PII_TRAITS", "apply_traits", "apply_traits_many", "trait_values"]

# Trait name -> encrypted column. IMPORTANT: every personal field is listed here.
PII_TRAITS = {
    "email": "email_enc",
    "phone": "phone_enc",
    "last_name": "last_name_enc",
    "first_name": "first_name_enc",
    "last_name_kana": "last_name_kana_enc",
    "first_name_kana": "first_name_kana_enc",
    "postal_code": "postal_code_enc",
    "address": "address_enc",
    "birthday": "birthday_enc",
}
_CLEAR_TRAITS = ("gender", "prefecture", "city", "membership_rank", "registered_at")


def trait_values(cipher: PiiCipher, traits: CustomerTraits) -> dict[str, Any]:
    """Column values for the traits that are set (``None`` means leave as is)."""
    values: dict[str, Any] = {}
    for name, column in PII_TRAITS.items():
        value = getattr(traits, name)
        if value is None:
            continue
        text = value.isoformat() if name == "birthday" else str(value)
        values[column] = cipher.encrypt(text)
        if name in ("email", "phone"):
            values[f"{name}_hash"] = cipher.lookup_hash(name, text)
    if traits.birthday is not None:
        values["birth_md"] = traits.birthday.strftime("%m-%d")
    for name in _CLEAR_TRAITS:
        value = getattr(traits, name)
        if value is not None:
            values[name] = value
    return values


def apply_traits(scope: Scope, customer_id: uuid.UUID, traits: CustomerTraits) -> None:
    """Update a customer's profile with the traits that are set; attributes are merged."""
    values = trait_values(scope.cipher, traits)
    where = sa.and_(
        customers.c.workspace_id == scope.workspace_id, customers.c.customer_id == customer_id
    )
    if traits.attributes:
        current = scope.conn.execute(sa.select(customers.c.attributes).where(where)).scalar()
        values["attributes"] = {**(current or {}), **traits.attributes}
    if not values:
        return
    values["updated_at"] = scope.now
    scope.conn.execute(customers.update().where(where).values(**values))


def _plain(scope: Scope, name: str, stored: Any) -> Any:
    if name in PII_TRAITS:
        return scope.cipher.decrypt_optional(stored)
    return stored


def _wanted(traits: CustomerTraits) -> dict[str, Any]:
    """Trait name -> comparable value (PII as the text that would be encrypted)."""
    wanted: dict[str, Any] = {}
    for name in (*PII_TRAITS, *_CLEAR_TRAITS):
        value = getattr(traits, name)
        if value is not None:
            wanted[name] = value.isoformat() if name == "birthday" else value
    return wanted


def apply_traits_many(scope: Scope, updates: Sequence[tuple[uuid.UUID, CustomerTraits]]) -> int:
    """Apply traits to many customers, writing only values that differ from what is stored.

    Ciphertexts carry random nonces, so stored values are decrypted and compared
    first; an unchanged profile keeps its ciphertexts and ``updated_at``. Later
    entries for the same customer win. One read and at most a few bulk updates.
    Returns how many customers changed.
    """
    if not updates:
        return 0
    state = _load_current(scope, {cid for cid, _ in updates})
    changed: dict[uuid.UUID, dict[str, Any]] = {}
    for cid, traits in updates:
        current = state.setdefault(cid, {})
        diff = {n: v for n, v in _wanted(traits).items() if current.get(n) != v}
        attributes = {**current.get("attributes", {}), **traits.attributes}
        if attributes != current.get("attributes", {}):
            diff["attributes"] = attributes
        if diff:
            current.update(diff)
            changed.setdefault(cid, {}).update(diff)
    _write_changes(scope, changed)
    return len(changed)


def _load_current(scope: Scope, ids: set[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    names = (*PII_TRAITS, *_CLEAR_TRAITS)
    columns = [customers.c[PII_TRAITS.get(n, n)] for n in names]
    query = sa.select(customers.c.customer_id, customers.c.attributes, *columns).where(
        customers.c.workspace_id == scope.workspace_id, customers.c.customer_id.in_(ids)
    )
    state: dict[uuid.UUID, dict[str, Any]] = {}
    for row in scope.conn.execute(query):
        values = {n: _plain(scope, n, row[i + 2]) for i, n in enumerate(names)}
        values["attributes"] = row.attributes or {}
        state[row.customer_id] = values
    return state


def _write_changes(scope: Scope, changed: dict[uuid.UUID, dict[str, Any]]) -> None:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for cid, diff in changed.items():
        fields: dict[str, Any] = {n: v for n, v in diff.items() if n != "attributes"}
        if "birthday" in fields:
            fields["birthday"] = date.fromisoformat(fields["birthday"])
        traits = CustomerTraits.model_construct(**fields)
        values = trait_values(scope.cipher, traits)
        if "attributes" in diff:
            values["attributes"] = diff["attributes"]
        values["updated_at"] = scope.now
        values = {f"v_{k}": v for k, v in values.items()}
        values["cid"] = cid
        groups.setdefault(tuple(sorted(values)), []).append(values)
    for keys, rows in groups.items():
        stmt = (
            customers.update()
            .where(customers.c.workspace_id == scope.workspace_id)
            .where(customers.c.customer_id == sa.bindparam("cid"))
            .values({k[2:]: sa.bindparam(k) for k in keys if k != "cid"})
        )
        scope.conn.execute(stmt, rows)
