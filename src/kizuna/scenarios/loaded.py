"""Published scenario versions, loaded once per process (a version never changes)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from kizuna.scenarios.definition import Node, ScenarioSpec
from kizuna.store.scenarios import get_version

__all__ = ["LoadedScenario", "VersionCache"]


@dataclass(frozen=True, slots=True)
class LoadedScenario:
    """One published version with its nodes by id."""

    scenario_id: uuid.UUID
    version: int
    spec: ScenarioSpec
    nodes: dict[str, Node] = field(default_factory=dict)

    @classmethod
    def of(cls, scenario_id: uuid.UUID, version: int, spec: ScenarioSpec) -> LoadedScenario:
        """Index a spec's nodes."""
        return cls(scenario_id, version, spec, {n.id: n for n in spec.nodes})


class VersionCache:
    """Versions by (workspace, scenario, version), read from the store on first use."""

    def __init__(self) -> None:
        self._found: dict[tuple[uuid.UUID, uuid.UUID, int], LoadedScenario] = {}
        self._lock = threading.Lock()

    def get(
        self, conn: Connection, workspace_id: uuid.UUID, scenario_id: uuid.UUID, version: int
    ) -> LoadedScenario:
        """The version runs of ``scenario_id`` entered as ``version``."""
        key = (workspace_id, scenario_id, version)
        with self._lock:
            found = self._found.get(key)
        if found is None:
            spec = get_version(conn, workspace_id, scenario_id, version)
            found = LoadedScenario.of(scenario_id, version, spec)
            with self._lock:
                self._found[key] = found
        return found
