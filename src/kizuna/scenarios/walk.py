"""Moving one run through its nodes until it must wait, or ends.

A walk is pure bookkeeping over a :class:`Facts` object that the caller loaded
for the whole batch (consent, blacklist, responses, branch answers), so a batch
of runs costs a fixed number of queries. Sends and profile updates are returned
as intents; the caller writes them in the same transaction as the run.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from kizuna.scenarios.definition import (
    Branch,
    ExitNode,
    Send,
    Split,
    UpdateProfile,
    Wait,
    WaitFor,
    WaitUntil,
    Webhook,
)
from kizuna.scenarios.loaded import LoadedScenario
from kizuna.store.messages import SendIntent
from kizuna.store.scenario_runs import RunRecord, RunUpdate, Step

__all__ = ["Facts", "Walk", "next_local_time", "walk"]

MAX_NODES_PER_WALK = 100  # cycles without a wait are refused at save; this is a backstop
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(slots=True)
class Facts:
    """What the walk needs to know about the batch's customers, loaded up front."""

    now: datetime
    time_zone: str
    opted_out: set[tuple[uuid.UUID, str]] = field(default_factory=set)  # (customer, channel)
    blacklisted: set[uuid.UUID] = field(default_factory=set)
    responded: set[uuid.UUID] = field(default_factory=set)  # opened or clicked this scenario
    # (customer, node id) -> whether the branch condition holds; filled lazily by the caller
    branch: Callable[[uuid.UUID, Branch], bool] = lambda _c, _b: False
    capped: Callable[[uuid.UUID, str], bool] = lambda _c, _ch: False


@dataclass(slots=True)
class Walk:
    """The outcome of one walk: the run's new state and what it produced."""

    customer_id: uuid.UUID
    update: RunUpdate
    steps: list[Step] = field(default_factory=list)
    intents: list[SendIntent] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)  # profile changes
    tags: tuple[list[str], list[str]] = field(default_factory=lambda: ([], []))


def next_local_time(now: datetime, at: Any, weekdays: list[str], time_zone: str) -> datetime:
    """The next moment after ``now`` that is ``at`` local time, on one of ``weekdays``."""
    local = now.astimezone(ZoneInfo(time_zone))
    candidate = local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    for _ in range(8):
        if candidate > local and (not weekdays or _WEEKDAYS[candidate.weekday()] in weekdays):
            return candidate.astimezone(now.tzinfo)
        candidate = (candidate + timedelta(days=1)).replace(hour=at.hour, minute=at.minute)
    raise AssertionError("a weekday always comes within a week")


def split_path(run_id: uuid.UUID, node: Split) -> int:
    """Which path a run takes: deterministic by run and node, distributed by weight."""
    digest = hashlib.md5(f"{run_id}:{node.id}".encode(), usedforsecurity=False).digest()
    point = int.from_bytes(digest[:4], "big") % 100
    total = 0
    for index, path in enumerate(node.paths):
        total += path.weight
        if point < total:
            return index
    return len(node.paths) - 1


class _Walker:
    def __init__(self, run: RunRecord, scenario: LoadedScenario, facts: Facts) -> None:
        self.run, self.scenario, self.facts = run, scenario, facts
        self.steps_done = run.steps
        update = RunUpdate(run.run_id, "active", run.node_id, None, None, run.variant,
                           run.sends, run.steps)  # fmt: skip
        self.result = Walk(run.customer_id, update)

    def step(self, node_id: str, outcome: str, detail: str | None = None) -> None:
        self.steps_done += 1
        self.result.steps.append(Step(self.run, self.steps_done, node_id, outcome, detail))
        self.result.update.steps = self.steps_done

    def end(self, node_id: str, status: str, reason: str) -> None:
        u = self.result.update
        u.status, u.node_id, u.due_at, u.waiting = status, None, None, None
        u.ended_at, u.exit_reason = self.facts.now, reason
        self.step(node_id, "exited", reason)

    def wait(self, node_id: str, until: datetime, waiting: dict[str, Any]) -> None:
        u = self.result.update
        u.node_id, u.due_at, u.waiting = node_id, until, {"node": node_id, **waiting}
        self.step(node_id, "waiting", until.isoformat())

    def go(self) -> Walk:
        node_id = self.run.node_id
        waited = (self.run.waiting or {}).get("node")
        for _ in range(MAX_NODES_PER_WALK):
            if node_id is None:
                self.end("", "completed", "completed")
                return self.result
            node = self.scenario.nodes.get(node_id)
            if node is None:  # a version is checked when published; this is a backstop
                self.end(node_id, "exited", "unknown_node")
                return self.result
            following = self.visit(node, waited == node_id)
            waited = None
            if following is _STOP:
                return self.result
            node_id = following  # type: ignore[assignment]
        self.end(node_id or "", "exited", "too_many_steps")
        return self.result

    def visit(self, node: Any, returning: bool) -> str | object | None:
        """Run one node; return the next node id, None (completed) or _STOP (waiting/ended)."""
        now = self.facts.now
        if isinstance(node, Wait | WaitUntil):
            if returning:
                self.step(node.id, "passed")
                return node.next
            zone = self.facts.time_zone
            until = (now + node.duration.delta() if isinstance(node, Wait)
                     else next_local_time(now, node.time, list(node.weekdays), zone))  # fmt: skip
            self.wait(node.id, until, {})
            return _STOP
        if isinstance(node, WaitFor):
            if returning:  # woken by the timeout (an arrival moves the run past this node)
                self.step(node.id, "passed", "timeout")
                return node.timeout_next
            awaited: dict[str, Any] = (
                {"event": node.event.model_dump(mode="json")} if node.event
                else {"segment": node.segment, "change": node.change}
            )  # fmt: skip
            self.wait(node.id, now + node.timeout.delta(), awaited)
            return _STOP
        if isinstance(node, Branch):
            taken = self.facts.branch(self.run.customer_id, node)
            self.step(node.id, "passed", "yes" if taken else "no")
            return node.yes if taken else node.no
        if isinstance(node, Split):
            path = node.paths[split_path(self.run.run_id, node)]
            self.result.update.variant = path.label or path.next
            self.step(node.id, "passed", self.result.update.variant)
            return path.next
        if isinstance(node, Send):
            return self.send(node)
        if isinstance(node, Webhook):
            self.intent("webhook", node.template, "transactional", None, node.id,
                        {"url": node.url} if node.url else {})  # fmt: skip
            self.step(node.id, "sent", "webhook")
            return node.next
        if isinstance(node, UpdateProfile):
            self.result.attributes.update(node.attributes)
            self.result.tags[0].extend(node.add_tags)
            self.result.tags[1].extend(node.remove_tags)
            self.step(node.id, "passed", "profile updated")
            return node.next
        assert isinstance(node, ExitNode)
        self.end(node.id, "completed", "exit_node")
        return _STOP

    def send(self, node: Send) -> str | object | None:
        exits, facts, customer = self.scenario.spec.exits, self.facts, self.run.customer_id
        if node.purpose == "marketing":
            if exits.on_blacklist and customer in facts.blacklisted:
                self.end(node.id, "exited", "blacklisted")
                return _STOP
            if exits.on_opt_out and (customer, node.channel) in facts.opted_out:
                self.end(node.id, "exited", "opted_out")
                return _STOP
            limit = exits.no_response_after_sends
            if (
                limit is not None
                and self.result.update.sends >= limit
                and (customer not in facts.responded)
            ):
                self.end(node.id, "exited", "no_response")
                return _STOP
            if exits.on_frequency_cap and facts.capped(customer, node.channel):
                self.end(node.id, "exited", "frequency_cap")
                return _STOP
        params = {"on_cap": node.when_capped} if node.when_capped == "defer" else {}
        key = self.intent(node.channel, node.template, node.purpose, node.topic, node.id, params)
        self.result.update.sends += 1
        self.step(node.id, "sent", key)
        return node.next

    def intent(self, channel: str, template: str | None, purpose: str, topic: str | None,
               node_id: str, extra: dict[str, Any]) -> str:  # fmt: skip
        # The key is the run and its step count: a replayed walk writes the same key.
        key = f"scenario:{self.run.run_id}:{self.steps_done + 1}"
        self.result.intents.append(SendIntent(
            self.run.customer_id, channel, template, key, purpose=purpose, topic=topic,
            params={**self.run.context, **extra}, source_kind="scenario",
            source_id=self.scenario.spec.key, step=node_id, variant=self.result.update.variant,
        ))  # fmt: skip
        return key


_STOP = object()


def walk(run: RunRecord, scenario: LoadedScenario, facts: Facts) -> Walk:
    """Walk ``run`` from its node until it waits or ends."""
    return _Walker(run, scenario, facts).go()
