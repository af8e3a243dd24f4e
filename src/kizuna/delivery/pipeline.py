"""The send pipeline: drain the outbox, gate each message at send time, hand over, record.

One drain claims due messages of every workspace, then per workspace:

1. **Gate** (one write transaction, customers locked on PostgreSQL so caps hold
   across workers): consent, suppression, topic, environment, caps, quiet hours.
   Skipped messages keep the rule's name as their reason; deferred ones go back to
   the queue with a later ``not_before``.
2. **Compose** (read): personalization contexts for the batch, render, footer,
   tracking, unsubscribe headers. A template that fails for one customer fails
   that message only.
3. **Hand over** (no transaction held): per channel, paced by the provider's rate
   limit, through its :class:`~kizuna.channels.base.ChannelSender`.
4. **Settle** (one write transaction): statuses, provider ids, retries with
   back-off, dead letters, "Message Sent" events, dead addresses, provider health.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kizuna.channels.base import Handover, Outcome, Outgoing
from kizuna.delivery.checks import judge
from kizuna.delivery.compose import Composer
from kizuna.delivery.rules import cap_window
from kizuna.delivery.senders import SenderPool
from kizuna.delivery.settings import DeliverySettings, load_delivery_settings
from kizuna.delivery.throttle import PAUSE_AFTER, RateLimiter, backoff, pause_for
from kizuna.store.addresses import Address, drop_identity, load_addresses
from kizuna.store.consent import suppress_hashes
from kizuna.store.database import Database
from kizuna.store.messages import MessageEvent, MessageRecord, record_message_events
from kizuna.store.outbox import (
    Settlement,
    claim_due,
    lock_customers,
    sent_counts,
    sent_in_window,
    settle,
)
from kizuna.store.providers import ProviderState, load_provider_state, record_provider_health
from kizuna.store.scope import Scope
from kizuna.store.seed_addresses import list_seed_addresses
from kizuna.store.send_gates import load_gate_facts
from kizuna.store.workspaces import Workspace, get_workspace

__all__ = ["DrainReport", "Pipeline"]

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # a claimed batch not settled by then is claimed again


@dataclass(slots=True)
class DrainReport:
    """What one drain did, by final status (sent, skipped, deferred, failed, retry, dead)."""

    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class _Answer:
    message: MessageRecord
    handover: Handover
    address: Address | None
    provider: str


@dataclass(slots=True)
class _Batch:
    workspace: Workspace
    settings: DeliverySettings
    ready: list[tuple[MessageRecord, Address | None]] = field(default_factory=list)
    settlements: list[Settlement] = field(default_factory=list)


class Pipeline:
    """Drains the outbox; keeps provider connections and rate buckets between drains."""

    def __init__(self, db: Database, *, batch_size: int = 500, lease: timedelta = LEASE) -> None:
        self._db = db
        self._batch = batch_size
        self._lease = lease
        self._senders = SenderPool()
        self._limiter = RateLimiter()

    @property
    def batch_size(self) -> int:
        """How many messages one drain claims at most."""
        return self._batch

    def close(self) -> None:
        """Close provider connections."""
        self._senders.close()

    def drain(self) -> DrainReport:
        """Claim one batch of due messages and take each to its final (or next) state."""
        now = self._db.clock.now()
        with self._db.write() as conn:
            claimed = claim_due(conn, now, self._batch, self._lease)
        report = DrainReport(claimed=len(claimed))
        by_workspace: dict[uuid.UUID, list[MessageRecord]] = {}
        for message in claimed:
            by_workspace.setdefault(message.workspace_id, []).append(message)
        for workspace_id, batch in by_workspace.items():
            for s in self._deliver(workspace_id, batch):
                report.outcomes[_label(s)] += 1
        return report

    def drain_all(self) -> DrainReport:
        """Drain until nothing is due (for ``kizuna worker --once`` and tests)."""
        total = DrainReport()
        while True:
            report = self.drain()
            total.claimed += report.claimed
            total.outcomes.update(report.outcomes)
            if report.claimed < self._batch:
                return total

    def _scope(self, conn: object, workspace_id: uuid.UUID, now: datetime) -> Scope:
        return Scope(conn, self._db.cipher, workspace_id, now)  # type: ignore[arg-type]

    def _deliver(self, workspace_id: uuid.UUID, batch: list[MessageRecord]) -> list[Settlement]:
        now = self._db.clock.now()
        with self._db.write() as conn:
            scope = self._scope(conn, workspace_id, now)
            work = self._gate(scope, batch)
            settle(conn, workspace_id, work.settlements, now)
        done = list(work.settlements)
        if work.ready:
            done += self._send(workspace_id, work)
        return done

    def _gate(self, scope: Scope, batch: list[MessageRecord]) -> _Batch:
        conn, now = scope.conn, scope.now
        workspace = get_workspace(conn, scope.workspace_id)
        work = _Batch(workspace, load_delivery_settings(conn, scope.workspace_id))
        ids = [m.customer_id for m in batch]
        lock_customers(conn, scope.workspace_id, ids)
        addresses = _addresses(scope, batch)
        facts = load_gate_facts(
            scope, ids, [(m.channel, a.hash) for m in batch if (a := addresses.get(m.message_id))]
        )
        window = cap_window(work.settings.frequency_caps)
        sent = sent_counts(conn, scope.workspace_id, ids, now - window) if window else {}
        for message in batch:
            address = addresses.get(message.message_id)
            history = sent.setdefault(message.customer_id, [])
            verdict = judge(
                message, address, facts, work.settings,
                environment=workspace.environment, time_zone=workspace.time_zone,
                sent=history, now=now,
            )  # fmt: skip
            if verdict.action == "send":
                work.ready.append((message, address))
                if message.purpose == "marketing":
                    history.append((message.channel, now))  # later messages in the batch see it
            elif verdict.action == "defer":
                work.settlements.append(
                    Settlement(message.message_id, "queued", verdict.reason, verdict.not_before)
                )
            else:
                work.settlements.append(Settlement(message.message_id, "skipped", verdict.reason))
        # Claimed-and-passed messages count toward caps from now on (status sending).
        passed = [Settlement(m.message_id, "sending", sent_at=now) for m, _ in work.ready]
        settle(conn, scope.workspace_id, passed, now)
        return work

    def _send(self, workspace_id: uuid.UUID, work: _Batch) -> list[Settlement]:
        now = self._db.clock.now()
        with self._db.read() as conn:
            scope = self._scope(conn, workspace_id, now)
            composed = Composer(scope, work.workspace, work.settings).compose(work.ready)
        settlements: list[Settlement] = []
        answers: list[_Answer] = []
        states: dict[str, ProviderState] = {}
        by_channel: dict[str, list[tuple[MessageRecord, Outgoing, Address | None]]] = {}
        for message, address in work.ready:
            result = composed[message.message_id]
            if isinstance(result, str):
                settlements.append(_failed(message, f"render: {result}"))
            else:
                by_channel.setdefault(message.channel, []).append((message, result, address))
        for channel, items in by_channel.items():
            with self._db.read() as conn:
                state = load_provider_state(self._scope(conn, workspace_id, now), channel)
            if state is None:
                settlements += [
                    _failed(m, f"no provider configured for {channel}") for m, *_ in items
                ]
                continue
            states[channel] = state
            settlements += self._hand_over(workspace_id, state, items, answers, now)
        with self._db.write() as conn:
            scope = self._scope(conn, workspace_id, self._db.clock.now())
            settlements += _outcomes(scope, answers, work.settings)
            settle(conn, workspace_id, settlements, scope.now)
            _record_events(scope, settlements, {m.message_id: m for m, _ in work.ready})
            _health(scope, answers, states)
        return settlements

    def _hand_over(
        self,
        workspace_id: uuid.UUID,
        state: ProviderState,
        items: list[tuple[MessageRecord, Outgoing, Address | None]],
        answers: list[_Answer],
        now: datetime,
    ) -> list[Settlement]:
        """Hand what the rate limit allows to the provider; the rest waits a moment."""
        if state.paused_until is not None and state.paused_until > now:
            return [_requeue(m, "provider_paused", state.paused_until) for m, *_ in items]
        key = (workspace_id, state.config.channel)
        allowed = self._limiter.take(key, state.config.settings, len(items), now)
        soon = now + timedelta(seconds=1)
        window = state.config.settings.get("rate_per_window")
        if window:  # e.g. {"count": 10000, "seconds": 3600}: counted in the store, so global
            seconds = float(window.get("seconds", 3600))
            with self._db.read() as conn:
                used = sent_in_window(conn, workspace_id, state.config.channel,
                                      now - timedelta(seconds=seconds))  # fmt: skip
            # Messages of this batch already passed the gate as `sending`: they count.
            allowed = min(allowed, max(int(window.get("count", 0)) - used + len(items), 0))
            soon = now + timedelta(seconds=min(seconds, 60))
        later = [_requeue(m, "rate_limited", soon) for m, *_ in items[allowed:]]
        sender = self._senders.sender(workspace_id, state)
        going = items[:allowed]
        for start in range(0, len(going), sender.max_batch):
            chunk = going[start : start + sender.max_batch]
            given = {h.message_id: h for h in sender.send([o for _, o, _ in chunk])}
            for message, _, address in chunk:
                answer = given.get(message.message_id) or Handover(
                    message.message_id, Outcome.RETRY, detail="the channel gave no answer"
                )
                answers.append(_Answer(message, answer, address, state.config.provider))
        return later


def _health(scope: Scope, answers: list[_Answer], states: dict[str, ProviderState]) -> None:
    """Count batches that failed entirely; pause the channel after too many in a row."""
    by_channel: dict[str, list[Outcome]] = {}
    for a in answers:
        by_channel.setdefault(a.message.channel, []).append(a.handover.outcome)
    for channel, outcomes in by_channel.items():
        streak = states[channel].error_streak
        streak = streak + 1 if all(o is Outcome.RETRY for o in outcomes) else 0
        paused = scope.now + pause_for(streak) if streak >= PAUSE_AFTER else None
        if paused is not None:
            log.warning("channel %s of workspace %s paused until %s after %d failed batches",
                        channel, scope.workspace_id, paused, streak)  # fmt: skip
        if streak != states[channel].error_streak or paused is not None:
            record_provider_health(scope.conn, scope.workspace_id, channel, streak, paused)


def _addresses(scope: Scope, batch: Sequence[MessageRecord]) -> dict[uuid.UUID, Address]:
    """Each message's destination: the customer's address, or the seed for a test send."""
    found: dict[uuid.UUID, Address] = {}
    by_channel: dict[str, list[MessageRecord]] = {}
    for m in batch:
        if m.source_kind != "test":
            by_channel.setdefault(m.channel, []).append(m)
    for channel, items in by_channel.items():
        known = load_addresses(scope, channel, [m.customer_id for m in items])
        for m in items:
            if m.customer_id in known:
                found[m.message_id] = known[m.customer_id]
    tests = [m for m in batch if m.source_kind == "test"]
    if tests:
        seeds = {s.hash.hex(): s for s in list_seed_addresses(scope)}
        for m in tests:
            seed = seeds.get(str(m.params.get("seed_address_hash", "")))
            if seed is not None:
                found[m.message_id] = Address(seed.address, seed.hash)
    return found


def _failed(message: MessageRecord, reason: str) -> Settlement:
    return Settlement(message.message_id, "failed", reason, clear_sent_at=True)


def _requeue(message: MessageRecord, reason: str, at: datetime) -> Settlement:
    return Settlement(message.message_id, "queued", reason, at, clear_sent_at=True)


def _outcomes(scope: Scope, answers: list[_Answer], settings: DeliverySettings) -> list[Settlement]:
    """Turn provider answers into message states: sent, retry later, dead or failed."""
    settled = []
    jitter = random.uniform(0.8, 1.2)  # one per batch: a multicast's members retry together
    for a in answers:
        message, answer = a.message, a.handover
        if answer.outcome is Outcome.SENT:
            settled.append(_handed(a, "sent", None, sent_at=scope.now))
        elif answer.outcome is Outcome.RETRY:
            attempts = message.attempts + 1
            if attempts < settings.max_attempts:
                at = scope.now + backoff(attempts, answer.retry_after, jitter)
                settled.append(Settlement(message.message_id, "queued", answer.detail, at,
                                          attempts, clear_sent_at=True))  # fmt: skip
            else:
                settled.append(Settlement(message.message_id, "dead", answer.detail,
                                          attempts=attempts, clear_sent_at=True))  # fmt: skip
        else:
            if answer.outcome is Outcome.UNREACHABLE and a.address is not None:
                _forget_address(scope, message.channel, a.address)
            settled.append(_handed(a, "failed", answer.detail, clear_sent_at=True))
    return settled


def _handed(
    a: _Answer, status: str, reason: str | None, *, sent_at: datetime | None = None,
    clear_sent_at: bool = False,
) -> Settlement:  # fmt: skip
    """The settlement of a message the provider answered: who took it, under which id."""
    return Settlement(
        a.message.message_id, status, reason, provider=a.provider,
        provider_message_id=a.handover.provider_message_id,
        address_hash=a.address.hash if a.address else None,
        sent_at=sent_at, clear_sent_at=clear_sent_at,
    )  # fmt: skip


def _forget_address(scope: Scope, channel: str, address: Address) -> None:
    """A dead token or LINE id is dropped; a dead email or number goes on the suppression list."""
    if not drop_identity(scope, channel, address.hash):
        suppress_hashes(scope, channel, [address.hash], "hard_bounce", "provider: unreachable")


def _record_events(
    scope: Scope, settlements: list[Settlement], known: dict[uuid.UUID, MessageRecord]
) -> None:
    happened = [
        MessageEvent(s.message_id, "Message Sent", scope.now)
        if s.status == "sent"
        else MessageEvent(s.message_id, "Message Failed", scope.now, {"reason": s.reason or ""})
        for s in settlements
        if s.status in ("sent", "failed", "dead")
    ]
    record_message_events(scope, happened, known)


def _label(s: Settlement) -> str:
    if s.status == "queued":
        return "retry" if s.attempts else "deferred"
    return s.status
