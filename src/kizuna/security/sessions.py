"""Signing in and out: passwords checked with argon2, lock-out, sessions with a CSRF token.

Every failure answers the same sentence, whether the address has no account, the
password is wrong, the account is locked or disabled: nothing tells an attacker
which addresses exist. An unknown address costs the same argon2 work as a known
one. After :data:`MAX_FAILED_ATTEMPTS` failures in a row the account is locked for
:data:`LOCK_OUT`; the right password is refused while it lasts. Each sign-in,
failure, lock-out and sign-out is written to the operation log (the address
masked; the account by id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Connection

from kizuna.errors import Unauthorized
from kizuna.security.access import Principal, log_event, user_actor_name
from kizuna.security.masking import mask_email
from kizuna.security.passwords import hash_password, needs_rehash, verify_password
from kizuna.store import users as accounts
from kizuna.store.access import NewSession, create_session, delete_session
from kizuna.store.database import Database
from kizuna.store.operation_log import Actor
from kizuna.store.users import User

__all__ = [
    "LOCK_OUT",
    "MAX_FAILED_ATTEMPTS",
    "SESSION_LIFETIME",
    "SIGN_IN_FAILED",
    "SignedIn",
    "sign_in",
    "sign_out",
]

MAX_FAILED_ATTEMPTS = 5
LOCK_OUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
SIGN_IN_FAILED = (
    "the e-mail address or the password is wrong, or the account is locked for a while "
    "after repeated failures"
)
_ANONYMOUS = "anonymous"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A successful sign-in: the account and its new session's secrets."""

    user: User
    session: NewSession


def sign_in(db: Database, email: str, password: str, origin: str | None) -> SignedIn:
    """Check the password and open a session; ``Unauthorized`` with one sentence otherwise."""
    with db.read() as conn:
        user = accounts.find_user(conn, email)
        stored = None if user is None else accounts.password_hash_of(conn, user.user_id)
    # The slow part runs outside any write transaction, so SQLite's write lock stays free.
    matches = verify_password(stored, password)
    now = db.clock.now()
    with db.write() as conn:
        if user is None:
            log_event(conn, now, Actor(_ANONYMOUS, origin), "user.sign_in_failed",
                      target=None, email=_masked(email), reason="unknown_account")  # fmt: skip
        # Read again under the write lock: a lock-out by a parallel guess counts here too.
        elif not _refused(db, conn, accounts.get_user(conn, user.user_id), matches, origin):
            return _open(db, conn, user, password, stored, origin)
    raise Unauthorized(SIGN_IN_FAILED)


def _masked(email: str) -> str:
    return mask_email(email.strip().lower()[:320])


def _refused(db: Database, conn: Connection, user: User, matches: bool, origin: str | None) -> bool:
    """Log why a known account is refused (or return False when it may sign in)."""
    now = db.clock.now()
    actor = Actor(user_actor_name(user.user_id), origin)
    target = user_actor_name(user.user_id)
    reason = None
    if user.disabled_at is not None:
        reason = "disabled"
    elif user.locked_until is not None and user.locked_until > now:
        reason = "locked"
    elif not matches:
        reason = "wrong_password"
        locked = accounts.record_failed_sign_in(
            conn, user.user_id, now, limit=MAX_FAILED_ATTEMPTS, lock_for=LOCK_OUT
        )
        if locked:
            log_event(conn, now, actor, "user.locked_out", target=target,
                      email=mask_email(user.email), until=(now + LOCK_OUT).isoformat())  # fmt: skip
    if reason is None:
        return False
    log_event(conn, now, actor, "user.sign_in_failed", target=target,
              email=mask_email(user.email), reason=reason)  # fmt: skip
    return True


def _open(
    db: Database,
    conn: Connection,
    user: User,
    password: str,
    stored: str | None,
    origin: str | None,
) -> SignedIn:
    now = db.clock.now()
    accounts.record_sign_in(conn, user.user_id)
    if stored is not None and needs_rehash(stored):
        accounts.set_password_hash(conn, user.user_id, hash_password(password))
    session = create_session(conn, user.user_id, now, SESSION_LIFETIME, origin)
    log_event(conn, now, Actor(user_actor_name(user.user_id), origin), "user.sign_in",
              target=user_actor_name(user.user_id), email=mask_email(user.email))  # fmt: skip
    return SignedIn(user, session)


def sign_out(db: Database, principal: Principal, origin: str | None) -> None:
    """End the caller's session (a token caller has none: nothing to end, nothing logged)."""
    if principal.session_hash is None or principal.user is None:
        return
    with db.write() as conn:
        delete_session(conn, principal.session_hash)
        log_event(conn, db.clock.now(), Actor(principal.name, origin), "user.sign_out",
                  target=principal.name, email=mask_email(principal.user.email))  # fmt: skip
