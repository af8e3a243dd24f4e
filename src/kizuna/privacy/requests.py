"""Carrying out a data-subject request: one write transaction, recorded and logged.

Every request (disclose, correct, stop use, erase) resolves the customer, does
its work, writes a ``privacy_requests`` row and appends ``privacy.<kind>`` to the
operation log, all in one transaction: a request either happened and is on
record, or neither. IMPORTANT: the record and the log name the customer by
Kizuna's id only, never by the reference (email, phone) the operator typed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kizuna.store.database import Database
from kizuna.store.operation_log import Actor, log_operation
from kizuna.store.privacy import PrivacyRequest, record_request
from kizuna.store.profiles import find_customer_id
from kizuna.store.scope import Scope
from kizuna.store.types import new_id
from kizuna.store.workspaces import Workspace, get_workspace

__all__ = ["RequestContext", "finish_request", "open_request", "workspace_read", "workspace_write"]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a request handler works with: the scope, the workspace and the customer."""

    scope: Scope
    workspace: Workspace
    customer_id: uuid.UUID
    request_id: uuid.UUID


@contextmanager
def workspace_read(db: Database, workspace: str) -> Iterator[Scope]:
    """A read scope on the workspace named by slug; ``NotFound`` if unknown."""
    with db.read() as conn:
        ws = get_workspace(conn, workspace)
        yield Scope(conn, db.cipher, ws.workspace_id, db.clock.now())


@contextmanager
def workspace_write(db: Database, workspace: str) -> Iterator[tuple[Scope, Workspace]]:
    """A write scope on the workspace named by slug; ``NotFound`` if unknown."""
    with db.write() as conn:
        ws = get_workspace(conn, workspace)
        yield Scope(conn, db.cipher, ws.workspace_id, db.clock.now()), ws


@contextmanager
def open_request(db: Database, workspace: str, ref: str) -> Iterator[RequestContext]:
    """Start a request on the customer ``ref`` names (id, shop id, email or phone).

    Raises ``NotFound`` for an unknown workspace or customer; the transaction
    commits when the block ends without error.
    """
    with workspace_write(db, workspace) as (scope, ws):
        customer_id = find_customer_id(scope.conn, db.cipher, ws.workspace_id, ref)
        yield RequestContext(scope, ws, customer_id, new_id())


def finish_request(
    ctx: RequestContext, actor: Actor, kind: str, details: dict[str, Any]
) -> PrivacyRequest:
    """Record the request as completed and append it to the operation log."""
    scope = ctx.scope
    request = record_request(
        scope,
        request_id=ctx.request_id,
        customer_id=ctx.customer_id,
        kind=kind,
        requested_by=actor.name,
        origin=actor.origin,
        details=details,
    )
    log_operation(
        scope.conn,
        workspace_id=scope.workspace_id,
        at=scope.now,
        actor=actor.name,
        origin=actor.origin,
        action=f"privacy.{kind}",
        target=str(ctx.customer_id),
        details={"request_id": str(ctx.request_id), **details},
    )
    return request
