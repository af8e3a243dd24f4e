"""Scenarios from a notebook: statistics and simulations as DataFrames."""

from __future__ import annotations

from datetime import timedelta

from kizuna.client import Kizuna
from tests.integration.scenario_shop import build_shop, later, publish, run_engine, track
from tests.integration.test_scenario_engine import CART


def test_stats_and_simulation_from_python(db, workspace, scope_factory, clock):
    build_shop(scope_factory, clock)
    publish(scope_factory, CART)
    start = clock.now()
    track(db, workspace, "c1@example.jp", "Checkout Started", {"value": 8000, "cart_id": "B"})
    run_engine(db)
    later(db, clock, timedelta(hours=2))
    with Kizuna(db, "shop") as kz:
        stats = kz.scenario_stats("cart")
        frame = stats.frame()
        assert frame.set_index("node").loc["remind", "sent"] == 1
        assert stats.totals.entered == 1
        draft = {**CART, "key": "cart-draft"}
        simulated = kz.simulate(draft, start - timedelta(hours=1), clock.now())
        assert simulated.frame().set_index("node").loc["remind", "sent"] == 1
    with Kizuna(db, "shop") as kz:  # nothing of the simulation was kept
        assert kz.scenario_stats("cart").totals.entered == 1
