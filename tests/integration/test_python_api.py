"""The analysts' Python API returns DataFrames in the workspace's time zone."""

from __future__ import annotations

import pandas as pd

import kizuna


def test_dataframes_for_customers_orders_and_events(cli_env, hanako):
    with kizuna.connect("shop") as shop:
        customers = shop.customers()
        assert len(customers) == 1  # the merged anonymous record is left out
        assert "email" not in customers.columns
        assert customers.loc[0, "prefecture"] == "東京都"
        revealed = shop.customers(reveal=True)
        assert revealed.loc[0, "email"] == "hanako@example.jp"
        orders = shop.orders(since="2026-02-01")
        assert list(orders["order_id"]) == ["O-2"]
        assert str(orders["ordered_at"].dt.tz) == "Asia/Tokyo"
        assert orders.loc[0, "ordered_at"] == pd.Timestamp("2026-02-10 12:00", tz="Asia/Tokyo")
        items = shop.order_items()
        assert items["unit_price"].sum() == 6600
        assert isinstance(shop.events(), pd.DataFrame)
        profile = shop.profile("C100")
        assert profile["traits"]["email"] == "h***@example.jp"
        assert profile["timeline"][0]["title"] == "Order O-2"
