"""Correct: a customer's profile fields are set to what they say is right, or removed.

Values are validated as ingestion validates them (``CustomerTraits``: emails
lower-cased, phones to E.164, postal codes to ``123-4567``) and written with
``apply_traits``, so they are encrypted and hashed like any other. A corrected
email or phone also replaces its identity (the old value was wrong, so it must
not keep naming the customer); a value that already names another customer is a
``Conflict``, never a silent merge. The record and the log keep field names only.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import sqlalchemy as sa
from pydantic import ValidationError

from kizuna.domain.records import CustomerTraits
from kizuna.errors import Conflict, InvalidInput, Problem
from kizuna.privacy.requests import finish_request, open_request
from kizuna.store.customers import PII_TRAITS, apply_traits
from kizuna.store.database import Database
from kizuna.store.operation_log import Actor
from kizuna.store.privacy import PrivacyRequest, is_erased
from kizuna.store.scope import Scope
from kizuna.store.segment_membership import CUSTOMER_CHANGED, enqueue_changes
from kizuna.store.tables import customers, identities

__all__ = ["CORRECTABLE", "correct_profile", "parse_corrections"]

CORRECTABLE = (*PII_TRAITS, "gender", "prefecture", "city")
_IDENTITY_FIELDS = ("email", "phone")  # profile fields that are also identities


def parse_corrections(fields: Mapping[str, str | None]) -> tuple[CustomerTraits, list[str]]:
    """(the new values, the fields to remove); InvalidInput names every bad field."""
    if not fields:
        raise InvalidInput(Problem("no_fields", "name at least one field to correct", "fields"))
    problems = [
        Problem("unknown_field", f"cannot correct this; use one of {', '.join(CORRECTABLE)}", n)
        for n in fields
        if n not in CORRECTABLE
    ]
    if problems:
        raise InvalidInput(problems)
    values = {n: v for n, v in fields.items() if v is not None and str(v).strip()}
    try:
        traits = CustomerTraits(**values)
    except ValidationError as exc:
        raise InvalidInput(
            [Problem("invalid_value", str(e["msg"]), str(e["loc"][0])) for e in exc.errors()]
        ) from exc
    return traits, sorted(set(fields) - set(values))


def _old_values(scope: Scope, customer_id: uuid.UUID) -> dict[str, str | None]:
    row = scope.conn.execute(
        sa.select(customers.c.email_enc, customers.c.phone_enc).where(
            customers.c.workspace_id == scope.workspace_id, customers.c.customer_id == customer_id
        )
    ).one()
    return {n: scope.cipher.decrypt_optional(row._mapping[f"{n}_enc"]) for n in _IDENTITY_FIELDS}


def _check_owners(scope: Scope, customer_id: uuid.UUID, traits: CustomerTraits) -> None:
    for name in _IDENTITY_FIELDS:
        value = getattr(traits, name)
        if value is None:
            continue
        owner = scope.conn.execute(
            sa.select(identities.c.customer_id).where(
                identities.c.workspace_id == scope.workspace_id,
                identities.c.kind == name,
                identities.c.value_hash == scope.hash(name, value),
            )
        ).scalar()
        if owner is not None and owner != customer_id:
            raise Conflict(f"the new {name} already belongs to another customer; merge them first")


def _swap_identity(
    scope: Scope, customer_id: uuid.UUID, kind: str, old: str | None, new: str | None
) -> None:
    i = identities.c
    if old is not None and old != new:
        scope.conn.execute(
            identities.delete().where(
                i.workspace_id == scope.workspace_id,
                i.kind == kind,
                i.value_hash == scope.hash(kind, old),
                i.customer_id == customer_id,
            )
        )
    if new is None or new == old:
        return
    exists = scope.conn.execute(
        sa.select(i.customer_id).where(
            i.workspace_id == scope.workspace_id,
            i.kind == kind,
            i.value_hash == scope.hash(kind, new),
        )
    ).first()
    if exists is None:
        scope.conn.execute(
            identities.insert().values(
                workspace_id=scope.workspace_id,
                kind=kind,
                value_hash=scope.hash(kind, new),
                customer_id=customer_id,
                value_enc=scope.cipher.encrypt(new),
                first_seen_at=scope.now,
                last_seen_at=scope.now,
            )
        )


def _clear(scope: Scope, customer_id: uuid.UUID, names: list[str]) -> None:
    values: dict[str, None] = {}
    for name in names:
        column = PII_TRAITS.get(name, name)
        values[column] = None
        if name in _IDENTITY_FIELDS:
            values[f"{name}_hash"] = None
        if name == "birthday":
            values["birth_md"] = None
    if values:
        scope.conn.execute(
            customers.update()
            .where(customers.c.workspace_id == scope.workspace_id)
            .where(customers.c.customer_id == customer_id)
            .values(updated_at=scope.now, **values)
        )


def correct_profile(
    db: Database, workspace: str, ref: str, fields: Mapping[str, str | None], *, actor: Actor
) -> PrivacyRequest:
    """Set (or, with an empty value, remove) profile fields of the customer ``ref`` names.

    Raises ``InvalidInput`` naming each bad field, ``NotFound`` for an unknown
    customer, ``Conflict`` for an erased one or an email/phone of another customer.
    """
    traits, cleared = parse_corrections(fields)
    with open_request(db, workspace, ref) as ctx:
        scope, customer_id = ctx.scope, ctx.customer_id
        if is_erased(scope, customer_id):
            raise Conflict("this customer's personal data was erased; nothing to correct")
        _check_owners(scope, customer_id, traits)
        old = _old_values(scope, customer_id)
        apply_traits(scope, customer_id, traits)
        _clear(scope, customer_id, cleared)
        for name in _IDENTITY_FIELDS:
            if name in fields:
                _swap_identity(scope, customer_id, name, old[name], getattr(traits, name))
        enqueue_changes(scope, {customer_id: (CUSTOMER_CHANGED,)})
        set_fields = sorted(n for n in fields if n not in cleared)
        return finish_request(ctx, actor, "correct", {"fields": set_fields, "cleared": cleared})
