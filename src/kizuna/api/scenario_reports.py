"""Scenario reports over HTTP: per-node statistics, and simulating a draft on real history.

``GET …/scenarios/{key}/stats[?version=N]`` answers per node how many runs reached
it, wait there, passed, were sent (per channel and template) and left (by
reason), with the scenario's totals. ``POST …/scenarios/simulate`` replays a time
range through an unsaved draft and answers the same per-node numbers and what
would have been sent — nothing is kept or sent. A bad draft answers 400 with
every problem at its path in the body (``spec.nodes.remind.template``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, Field

from kizuna.api.deps import get_db, require
from kizuna.errors import InvalidInput, Problem
from kizuna.scenarios.checks import parse_scenario
from kizuna.scenarios.definition import ScenarioSpec
from kizuna.scenarios.simulate import Simulation, simulate
from kizuna.scenarios.stats import node_stats
from kizuna.segments.report import workspace_scope
from kizuna.store.database import Database

__all__ = ["router"]

router = APIRouter(prefix="/api/workspaces/{workspace}/scenarios", tags=["scenarios"])
Db = Annotated[Database, Depends(get_db)]
_READ = [Depends(require("scenarios.read"))]
_WRITE = [Depends(require("scenarios.write"))]  # a simulation is part of designing a draft


class NodeStatsOut(BaseModel):
    """What happened at one node."""

    node_id: str
    type: str
    label: str | None
    entered: int  # runs that reached the node
    waiting: int  # active runs waiting there now (at ``until`` for a simulation)
    passed: int
    sent: int
    skipped: int
    exited: int
    exits: dict[str, int]  # reason -> runs
    paths: dict[str, int]  # branch yes/no, split variant, wait_for arrived/timeout
    channels: dict[str, int]
    templates: dict[str, int]


class TotalsOut(BaseModel):
    """The scenario as a whole."""

    entered: int
    held_out: int
    holdout: int
    global_control: int
    active: int
    completed: int
    exited: int
    exits: dict[str, int]
    goals: int
    conversion_rate: float | None
    sent: int
    channels: dict[str, int]


class StatsOut(BaseModel):
    """Per-node statistics of a scenario (one version, or all when ``version`` is null)."""

    key: str
    name: str
    version: int | None
    totals: TotalsOut
    nodes: list[NodeStatsOut]


class SentOut(BaseModel):
    """Messages one node would have sent."""

    node_id: str
    channel: str
    template: str | None
    messages: int


class ReplayedOut(BaseModel):
    """How much history the simulation replayed."""

    events: int
    signals: int
    calendar: int


class SimulationOut(StatsOut):
    """What the draft would have done; ``limits`` says what a simulation cannot know."""

    since: datetime
    until: datetime
    replayed: ReplayedOut
    sends: list[SentOut]
    limits: list[str]


class SimulateIn(BaseModel):
    """A draft and the range of history to replay through it."""

    spec: dict[str, Any] = Field(description="A scenario definition, as for POST …/scenarios")
    since: datetime = Field(description="Start (inclusive); without an offset: workspace time")
    until: datetime = Field(description="End (exclusive); at most 366 days after since")


def _simulation(sim: Simulation) -> SimulationOut:
    found = sim.stats.as_dict()
    return SimulationOut(
        **found, since=sim.since, until=sim.until,
        replayed=ReplayedOut(events=sim.events, signals=sim.signals, calendar=sim.calendar),
        sends=[SentOut(node_id=s.node_id, channel=s.channel, template=s.template,
                       messages=s.messages) for s in sim.sends],
        limits=list(sim.limits),
    )  # fmt: skip


def _in_body(exc: InvalidInput) -> InvalidInput:
    """The draft's problems with paths from the body's root (``spec.nodes.x``)."""
    return InvalidInput([
        Problem(p.code, p.message, f"spec.{p.field}" if p.field else "spec", p.line)
        for p in exc.problems
    ])  # fmt: skip


def _parse(spec: dict[str, Any]) -> ScenarioSpec:
    try:
        return parse_scenario(spec)
    except InvalidInput as exc:
        raise _in_body(exc) from None


@router.get(
    "/{key}/stats", dependencies=_READ, response_model=StatsOut, summary="Per-node statistics"
)
def get_stats(
    workspace: str,
    key: str,
    db: Db,
    version: Annotated[int | None, Query(ge=1, description="One version [default: all]")] = None,
) -> StatsOut:
    """Per node: entered, waiting, passed, sent, exited by reason; and the totals."""
    with workspace_scope(db, workspace) as scope:
        stats = node_stats(scope, key, version)
    return StatsOut.model_validate(stats.as_dict())


@router.post(
    "/simulate",
    dependencies=_WRITE,
    response_model=SimulationOut,
    summary="Simulate a draft on history",
)
def post_simulate(
    workspace: str,
    db: Db,
    body: Annotated[SimulateIn, Body()],
) -> SimulationOut:
    """Replay ``[since, until)`` through the draft: per-node counts and sends; nothing is sent.

    The draft is checked first (400 with each problem at ``spec.<path>``).
    """
    spec = _parse(body.spec)
    try:
        sim = simulate(db, workspace, spec, body.since, body.until)
    except InvalidInput as exc:
        dated = all(p.field in ("since", "until") for p in exc.problems)
        raise exc if dated else _in_body(exc) from None
    return _simulation(sim)
