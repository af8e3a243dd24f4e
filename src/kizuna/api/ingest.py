"""Segment-compatible ingestion routes: ``/v1/identify|track|page|screen|group|alias|batch``.

The write key comes as the HTTP Basic user name (empty password) or as
``writeKey`` in the body, as Segment's SDKs send it. Bodies may be gzipped.
A 2xx is sent only after the transaction holding the data has committed; in a
batch with some bad messages the good ones are committed and the answer is 400
listing each rejected message by index and field, with the accepted count.

A write key's workspace is remembered for :data:`KEY_CACHE_SECONDS` (5 s) per
process, so a revoked key keeps working for at most that long; unknown keys are
never remembered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from kizuna.api.deps import get_db, write_key_only
from kizuna.api.errors import error_body
from kizuna.errors import Unauthorized
from kizuna.ingest.group_commit import ingest_request
from kizuna.ingest.segment import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    ParsedBatch,
    decode_body,
    parse_batch,
    parse_single,
)
from kizuna.store.database import Database
from kizuna.store.workspaces import authenticate_write_key

__all__ = ["KEY_CACHE_SECONDS", "router"]

# Write keys can only ingest, and only write keys ingest (no account or operator token).
router = APIRouter(prefix="/v1", tags=["ingest"], dependencies=[Depends(write_key_only())])

_SUCCESS = orjson.dumps({"success": True})
KEY_CACHE_SECONDS = 5.0
_KEY_CACHE_SIZE = 1024
# (id of the Database, SHA-256 of the key) -> (workspace id, monotonic expiry)
_known_keys: dict[tuple[int, bytes], tuple[uuid.UUID, float]] = {}


def _workspace_of(db: Database, key: str) -> uuid.UUID:
    """The workspace ``key`` writes to; Unauthorized if unknown or revoked (cached briefly)."""
    cache_key = (id(db), hashlib.sha256(key.encode()).digest())
    now = time.monotonic()
    known = _known_keys.get(cache_key)
    if known is not None and known[1] > now:
        return known[0]
    with db.read() as conn:
        workspace_id = authenticate_write_key(conn, key).workspace_id
    if len(_known_keys) >= _KEY_CACHE_SIZE:
        _known_keys.clear()
    _known_keys[cache_key] = (workspace_id, now + KEY_CACHE_SECONDS)
    return workspace_id


def _basic_key(authorization: str | None) -> str | None:
    if not authorization or authorization[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None


def _json(body: dict[str, Any], status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _rejected(parsed: ParsedBatch, total: int) -> Response:
    accepted = len(parsed.messages)
    described = "; ".join(p.describe() for p in parsed.problems)
    message = f"{total - accepted} of {total} messages rejected, {accepted} accepted: {described}"
    body = error_body("invalid_messages", message, parsed.problems)
    body["accepted"] = accepted
    return _json(body, 400)


def _count(payload: Any, kind: str) -> int:
    if kind != "batch":
        return 1
    items = payload.get("batch") if isinstance(payload, dict) else None
    return len(items) if isinstance(items, list) else 0


def ingest_body(db: Database, raw: bytes, headers: Headers, kind: str) -> Response:
    """Authenticate, validate and store one request's messages; answers after the commit."""
    received_at = db.clock.now()
    limit = MAX_BATCH_BYTES if kind == "batch" else MAX_MESSAGE_BYTES
    payload = decode_body(raw, headers.get("content-encoding"), limit)
    key = _basic_key(headers.get("authorization"))
    if key is None and isinstance(payload, dict) and isinstance(payload.get("writeKey"), str):
        key = payload["writeKey"]
    if not key:
        raise Unauthorized("a write key is required (HTTP Basic user name or writeKey)")
    if kind == "batch":
        parsed = parse_batch(payload, received_at)
    else:
        parsed = parse_single(payload, kind, received_at)
    ingest_request(db, _workspace_of(db, key), received_at, parsed.messages)
    # The transaction has committed: only now may the client hear success.
    if parsed.problems:
        return _rejected(parsed, _count(payload, kind))
    return Response(_SUCCESS, media_type="application/json")


async def _receive(request: Request, kind: str) -> Response:
    raw = await request.body()
    return await run_in_threadpool(ingest_body, get_db(request), raw, request.headers, kind)


def _route(kind: str) -> None:
    async def endpoint(request: Request) -> Response:
        return await _receive(request, kind)

    endpoint.__name__ = f"ingest_{kind}"
    endpoint.__doc__ = f"Segment ``{kind}`` call."
    router.add_api_route(f"/{kind}", endpoint, methods=["POST"], name=f"ingest_{kind}")


for _kind in ("identify", "track", "page", "screen", "group", "alias", "batch"):
    _route(_kind)
