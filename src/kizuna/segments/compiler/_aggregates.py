"""Tests on per-customer aggregates (how many times, how much) as set tests.

A customer with no rows has count 0 and total 0 but no average; whether the test
holds for them is known when compiling, and decides the shape:

- false at zero: the customer is present in ``… GROUP BY customer_id HAVING test``;
- true at zero: the customer is absent from ``… HAVING NOT test``;
- a count test that is the same for every count from 1 up needs no grouping at all:
  "at least once" is present in the rows, "never" absent from them.

(:meth:`Builder.present` / :meth:`Builder.absent` pick the SQL for each database.)
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from kizuna.segments.compiler._context import Builder, flag

__all__ = ["all_of", "compare_measure", "count_test", "grouped_test", "holds_at_zero"]

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gte": operator.ge,
    "lt": operator.lt, "lte": operator.le,
}  # fmt: skip
_HUGE = 2**62  # a count larger than any bound


def all_of(tests: Sequence[Any]) -> Any:
    """AND of Python booleans (a bool) or of SQL expressions (an expression)."""
    if all(isinstance(t, bool) for t in tests):
        return all(tests)
    return sa.and_(*tests)


def compare_measure(op: str, value: float | list[float], measure: Any) -> Any:
    """``measure op value`` for a SQL expression or a Python number (``between``: both ends)."""
    if op == "between":
        low, high = value if isinstance(value, list) else (value, value)
        return all_of([measure >= low, measure <= high])
    return _OPS[op](measure, value[0] if isinstance(value, list) else value)


def holds_at_zero(op: str, value: float | list[float], measure: float | None) -> bool:
    """Whether the compiled test holds for a customer without rows, whose measure is
    ``measure`` (None: undefined, as an average). An unknown comparison is false,
    except ``ne``, which keeps those it cannot tell equal (as the SQL does)."""
    if measure is None:
        return op == "ne"
    return bool(compare_measure(op, value, measure))


def grouped_test(
    b: Builder, rows: sa.Select[Any], having: sa.ColumnElement[bool], true_at_zero: bool
) -> sa.ColumnElement[bool]:
    """``having`` over each customer's ``rows`` (one ``customer_id`` column, ungrouped)."""
    if true_at_zero:
        return b.absent(rows, sa.not_(flag(having)))
    return b.present(rows, having)


def count_test(
    b: Builder,
    rows: sa.Select[Any],
    test: Callable[[Any], Any],
    bounds: Sequence[float],
) -> sa.ColumnElement[bool]:
    """``test(number of rows)`` per customer; ``bounds`` are the numbers ``test`` compares with.

    ``test`` is applied to Python ints (to decide the shape) and to ``count(*)``.
    """
    zero = bool(test(0))
    # A test of comparisons can only change value at a bound, so these points decide
    # whether it is the same for every count from 1 up.
    points = {1, _HUGE} | {
        p for v in bounds for p in (math.floor(v), math.ceil(v), math.floor(v) + 1) if p >= 1
    }
    values = {bool(test(p)) for p in points}
    if len(values) == 1:
        one = values.pop()
        if one == zero:
            return sa.true() if zero else sa.false()
        return b.present(rows) if one else b.absent(rows)
    return grouped_test(b, rows, test(sa.func.count()), zero)
