"""Kizuna: customer data hub and marketing automation for e-commerce and D2C brands.

The public Python API (pinned by a test):

- :func:`connect` opens a workspace and returns a :class:`Kizuna` whose methods
  return pandas DataFrames (customers, orders, order_items, events, products).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Kizuna", "__version__", "connect"]

if TYPE_CHECKING:
    from kizuna.client import Kizuna, connect


def __getattr__(name: str) -> Any:
    # Lazy, so `import kizuna` stays cheap and pulls in no pandas or SQLAlchemy.
    if name in ("Kizuna", "connect"):
        from kizuna import client

        return getattr(client, name)
    raise AttributeError(name)
