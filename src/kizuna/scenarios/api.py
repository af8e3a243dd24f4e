"""Starting runs on request (scenarios whose trigger is ``api``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from kizuna.errors import InvalidInput, Problem
from kizuna.scenarios.definition import ApiTrigger
from kizuna.store.scenario_runs import enqueue_inbox
from kizuna.store.scenarios import get_scenario
from kizuna.store.scope import Scope

__all__ = ["start_runs"]


def start_runs(
    scope: Scope, key: str, customer_ids: Sequence[uuid.UUID], context: dict[str, Any]
) -> int:
    """Ask the engine to enter these customers (entry rules still apply); returns how many."""
    saved = get_scenario(scope, key)
    if saved.status != "live" or not isinstance(saved.draft.trigger, ApiTrigger):
        message = f"scenario {key!r} is not live with an api trigger"
        raise InvalidInput(Problem("not_api_triggered", message, "key"))
    enqueue_inbox(scope, [(c, "api", key, dict(context)) for c in customer_ids])
    return len(customer_ids)
