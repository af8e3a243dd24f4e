"""Per-node statistics of a scenario, and its totals: who reached each node, and how they left.

Read from ``scenario_steps`` (what happened to each run at each node) and
``scenario_runs`` (where runs are now and how they ended) in three grouped
queries, however many runs there are:

- per node: **entered** (runs that reached it), **waiting** (active runs at the
  node now), **passed**, **sent** (per channel and template), **skipped**,
  **exited** by reason (``goal``, ``opted_out``, ``frequency_cap``,
  ``no_response``, ``priority``, ``exit_node`` …) and, for branches, splits and
  ``wait_for``, the path taken (``yes`` / ``no``, the variant, ``arrived`` /
  ``timeout``);
- per scenario: runs entered, held out (``holdout`` / ``global_control``: they
  have no steps, and are what uplift is measured against), active, completed,
  exited by reason, goal conversions and the conversion rate (goals / entered).

A node's channel and template are read from the version its steps were taken on,
so a node whose channel changed between versions is counted right. Held-out runs
are not "entered": the conversion rate is over the customers the scenario worked on.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa

from kizuna.errors import NotFound
from kizuna.scenarios.checks import parse_scenario
from kizuna.scenarios.definition import ScenarioSpec, Send, Webhook
from kizuna.store.scenarios import get_scenario
from kizuna.store.scope import Scope
from kizuna.store.tables import scenario_runs, scenario_steps, scenario_versions

__all__ = ["CONTROL_REASONS", "NodeStats", "ScenarioStats", "ScenarioTotals", "node_stats",
           "scenario_stats"]  # fmt: skip

CONTROL_REASONS = ("holdout", "global_control")
_DETAILED = ("exited", "passed", "skipped")  # outcomes whose detail is a reason or a path
_PATHS = frozenset({"branch", "split", "wait_for"})
_PREFIXES = ("exited", "path", "sent", "template")  # frame columns, in this order


@dataclass(slots=True)
class NodeStats:
    """What happened at one node (over the versions asked for); added up once, then read."""

    node_id: str
    type: str  # the node's type (wait, send …); "" when no version names it any more
    label: str | None
    entered: int = 0  # runs that reached the node
    # Active runs at the node now: waiting there (or, for a moment, about to move on).
    waiting: int = 0
    passed: int = 0
    sent: int = 0
    skipped: int = 0
    exited: int = 0
    exits: dict[str, int] = field(default_factory=dict)  # reason -> steps
    paths: dict[str, int] = field(default_factory=dict)  # yes/no, variant, arrived/timeout
    channels: dict[str, int] = field(default_factory=dict)  # sends per channel
    templates: dict[str, int] = field(default_factory=dict)  # sends per template


@dataclass(frozen=True, slots=True)
class ScenarioTotals:
    """The scenario as a whole."""

    entered: int = 0  # runs started (held-out customers not included)
    held_out: int = 0
    holdout: int = 0  # the scenario's own holdout
    global_control: int = 0  # the workspace's global control group
    active: int = 0
    completed: int = 0
    exited: int = 0
    exits: dict[str, int] = field(default_factory=dict)  # ended runs by reason
    goals: int = 0
    conversion_rate: float | None = None  # goals / entered
    sent: int = 0
    channels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScenarioStats:
    """Per-node statistics and totals of one scenario (one version, or all)."""

    key: str
    name: str
    version: int | None  # None: every version
    nodes: list[NodeStats]
    totals: ScenarioTotals

    def node(self, node_id: str) -> NodeStats:
        """One node's statistics; ``NotFound`` for an id no version has."""
        for found in self.nodes:
            if found.node_id == node_id:
                return found
        raise NotFound(f"scenario {self.key!r} has no node {node_id!r}")

    def frame(self) -> pd.DataFrame:
        """One row per node; exit reasons, paths, channels and templates as columns."""
        rows = []
        for n in self.nodes:
            row: dict[str, Any] = {
                "node": n.node_id, "type": n.type, "label": n.label, "entered": n.entered,
                "waiting": n.waiting, "passed": n.passed, "sent": n.sent,
                "skipped": n.skipped, "exited": n.exited,
            }  # fmt: skip
            for prefix, counts in zip(_PREFIXES, (n.exits, n.paths, n.channels, n.templates),
                                      strict=True):  # fmt: skip
                row.update({f"{prefix}:{k}": v for k, v in counts.items()})
            rows.append(row)
        frame = pd.DataFrame(rows)
        base = [c for c in frame.columns if ":" not in c]
        extra = sorted((c for c in frame.columns if ":" in c),
                       key=lambda c: (_PREFIXES.index(c.split(":")[0]), c))  # fmt: skip
        frame[extra] = frame[extra].fillna(0).astype("int64")
        return frame[base + extra]

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for JSON)."""
        return asdict(self)


def _add(counts: dict[str, int], key: str, n: int) -> None:
    counts[key] = counts.get(key, 0) + n


def _mine(table: sa.Table, scope: Scope, scenario_id: uuid.UUID, version: int | None) -> list[Any]:
    c = table.c
    where = [c.workspace_id == scope.workspace_id, c.scenario_id == scenario_id]
    return where + ([c.version == version] if version is not None else [])


def _step_counts(scope: Scope, scenario_id: uuid.UUID, version: int | None) -> list[Any]:
    """(version, node, outcome, reason-or-path, steps): sends' keys and waits' times dropped."""
    s = scenario_steps.c
    detail = sa.case((s.outcome.in_(_DETAILED), s.detail), else_=sa.null())
    inner = (
        sa.select(s.version, s.node_id, s.outcome, detail.label("detail"))
        .where(*_mine(scenario_steps, scope, scenario_id, version))
        .subquery()
    )  # grouped outside, so PostgreSQL sees one expression, not two bound copies
    i = inner.c
    columns = (i.version, i.node_id, i.outcome, i.detail)
    query = sa.select(*columns, sa.func.count().label("n")).group_by(*columns)
    return list(scope.conn.execute(query))


def _reached(scope: Scope, scenario_id: uuid.UUID, version: int | None) -> dict[str, int]:
    """Distinct runs per node (a run that loops through a node counts once)."""
    s = scenario_steps.c
    query = (
        sa.select(s.node_id, sa.func.count(sa.distinct(s.run_id)))
        .where(*_mine(scenario_steps, scope, scenario_id, version))
        .group_by(s.node_id)
    )
    return {node: n for node, n in scope.conn.execute(query)}


def _run_counts(scope: Scope, scenario_id: uuid.UUID, version: int | None) -> list[Any]:
    """(status, held_out, exit_reason, node, runs); only active runs have a node."""
    r = scenario_runs.c
    columns = (r.status, r.held_out, r.exit_reason, r.node_id)
    query = (
        sa.select(*columns, sa.func.count().label("n"))
        .where(*_mine(scenario_runs, scope, scenario_id, version))
        .group_by(*columns)
    )
    return list(scope.conn.execute(query))


def _count_step(node: NodeStats, outcome: str, detail: str | None, n: int,
                sends: tuple[str, str] | None) -> None:  # fmt: skip
    """Add ``n`` steps of one outcome (and reason or path) to ``node``."""
    if outcome == "exited":
        node.exited += n
        _add(node.exits, detail or "unknown", n)
    elif outcome == "passed":
        node.passed += n
        if detail and node.type in _PATHS:
            # "arrived: Order Completed" -> "arrived": the event is the node's own
            path = detail.split(":", 1)[0] if node.type == "wait_for" else detail
            _add(node.paths, path, n)
    elif outcome == "sent":
        node.sent += n
        if sends is not None:
            _add(node.channels, sends[0], n)
            _add(node.templates, sends[1], n)
    elif outcome == "skipped":
        node.skipped += n


def _sends(spec: ScenarioSpec | None, node_id: str) -> tuple[str, str] | None:
    """(channel, template) a node sends on in ``spec``."""
    for node in spec.nodes if spec is not None else ():
        if node.id == node_id and isinstance(node, Send):
            return node.channel, node.template
        if node.id == node_id and isinstance(node, Webhook):
            return "webhook", node.template or node.url or ""
    return None


def _nodes(
    order: ScenarioSpec, specs: Mapping[int, ScenarioSpec], seen: set[str]
) -> dict[str, NodeStats]:
    """Every node of ``order`` (in its order), then nodes only other versions had."""
    found = {n.id: NodeStats(n.id, n.type, n.label) for n in order.nodes}
    for _, spec in sorted(specs.items(), reverse=True):
        for n in spec.nodes:
            if n.id in seen and n.id not in found:
                found[n.id] = NodeStats(n.id, n.type, n.label)
    for node_id in sorted(seen - found.keys() - {""}):  # "": a run that ran off the end
        found[node_id] = NodeStats(node_id, "", None)
    return found


def _totals(rows: list[Any], nodes: Mapping[str, NodeStats]) -> ScenarioTotals:
    """Add up the grouped runs; active runs waiting at a node are counted on it."""
    t: dict[str, int] = {}
    exits: dict[str, int] = {}
    for status, held_out, reason, node_id, n in rows:
        if held_out:
            _add(t, "held_out", n)
            _add(t, reason if reason in CONTROL_REASONS else "holdout", n)
            continue
        _add(t, "entered", n)
        _add(t, status, n)  # active | completed | exited
        if status != "active":
            _add(exits, reason or "unknown", n)
        elif node_id in nodes:
            nodes[node_id].waiting += n
    goals, entered = exits.get("goal", 0), t.get("entered", 0)
    channels: dict[str, int] = {}
    for node in nodes.values():
        for channel, n in node.channels.items():
            _add(channels, channel, n)
    return ScenarioTotals(
        entered=entered, held_out=t.get("held_out", 0), holdout=t.get("holdout", 0),
        global_control=t.get("global_control", 0), active=t.get("active", 0),
        completed=t.get("completed", 0), exited=t.get("exited", 0), exits=exits,
        goals=goals, conversion_rate=goals / entered if entered else None,
        sent=sum(n.sent for n in nodes.values()), channels=channels,
    )  # fmt: skip


def scenario_stats(
    scope: Scope,
    scenario_id: uuid.UUID,
    specs: Mapping[int, ScenarioSpec],
    order: ScenarioSpec,
    *,
    version: int | None = None,
) -> ScenarioStats:
    """Statistics of the scenario stored as ``scenario_id`` (``specs``: its versions).

    Nodes are listed in ``order``'s order; nodes only older versions had follow.
    """
    steps = _step_counts(scope, scenario_id, version)
    reached = _reached(scope, scenario_id, version)
    nodes = _nodes(order, specs, set(reached))
    for node_id, n in reached.items():
        if node_id in nodes:
            nodes[node_id].entered = n
    for at_version, node_id, outcome, detail, n in steps:
        if node_id in nodes:
            sends = _sends(specs.get(at_version), node_id)
            _count_step(nodes[node_id], outcome, detail, n, sends)
    totals = _totals(_run_counts(scope, scenario_id, version), nodes)
    return ScenarioStats(order.key, order.name, version, list(nodes.values()), totals)


def _versions(scope: Scope, scenario_id: uuid.UUID) -> dict[int, ScenarioSpec]:
    v = scenario_versions.c
    rows = scope.conn.execute(
        sa.select(v.version, v.definition).where(
            v.workspace_id == scope.workspace_id, v.scenario_id == scenario_id
        )
    )
    return {version: parse_scenario(definition) for version, definition in rows}


def node_stats(scope: Scope, key: str, version: int | None = None) -> ScenarioStats:
    """Per-node statistics and totals of a saved scenario: every version, or one.

    ``NotFound`` for an unknown key or a version that was never published. A
    scenario never published has its draft's nodes, all zero.
    """
    saved = get_scenario(scope, key)
    specs = _versions(scope, saved.scenario_id)
    if version is not None and version not in specs:
        raise NotFound(f"scenario {key!r} has no published version {version}")
    if version is not None:
        order = specs[version]
    elif saved.live_version is not None and saved.live_version in specs:
        order = specs[saved.live_version]
    else:
        order = specs[max(specs)] if specs else saved.draft
    stats = scenario_stats(scope, saved.scenario_id, specs, order, version=version)
    return ScenarioStats(saved.key, saved.name, version, stats.nodes, stats.totals)
