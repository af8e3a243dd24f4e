"""Writing profile traits, encrypting personal fields and keeping their lookup hashes."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from kizuna.domain.records import CustomerTraits
from kizuna.store.scope import Scope
from kizuna.store.tables import customers

__all__ = ["PII_TRAITS", "apply_traits", "trait_values"]

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


def trait_values(scope: Scope, traits: CustomerTraits) -> dict[str, Any]:
    """Column values for the traits that are set (``None`` means leave as is)."""
    values: dict[str, Any] = {}
    for name, column in PII_TRAITS.items():
        value = getattr(traits, name)
        if value is None:
            continue
        text = value.isoformat() if name == "birthday" else str(value)
        values[column] = scope.cipher.encrypt(text)
        if name in ("email", "phone"):
            values[f"{name}_hash"] = scope.hash(name, text)
    if traits.birthday is not None:
        values["birth_md"] = traits.birthday.strftime("%m-%d")
    for name in _CLEAR_TRAITS:
        value = getattr(traits, name)
        if value is not None:
            values[name] = value
    return values


def apply_traits(scope: Scope, customer_id: uuid.UUID, traits: CustomerTraits) -> None:
    """Update a customer's profile with the traits that are set; attributes are merged."""
    values = trait_values(scope, traits)
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
