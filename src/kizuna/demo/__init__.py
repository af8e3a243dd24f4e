"""The demo shop: a realistic, deterministic Japanese D2C brand to try Kizuna on.

``generate_demo_data(db, DemoOptions(customers=10_000, seed=1))`` fills a
workspace with customers (names with kana, prefectures by population, consent
with evidence), a catalogue, orders from a BG/NBD-like repeat process with
Gamma-Gamma spend and seasonal peaks, behaviour events, carts, suppressions and
subscriptions, all stored exactly as the store layer stores them.
"""

from kizuna.demo.writer import TABLES, DemoOptions, DemoSummary, generate_demo_data

__all__ = ["TABLES", "DemoOptions", "DemoSummary", "generate_demo_data"]
