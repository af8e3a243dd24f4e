"""Segments: a typed definition language compiled to SQL, checked, counted and kept materialized.

``definition`` (the typed tree) → ``checks`` (names and types against a workspace) →
``compiler`` (one SQLAlchemy Core statement, workspace filter included) → ``membership``
(materialized members, entered / exited signals) and the 4R ``report``.
"""

__all__: list[str] = []
