"""RFM per customer, and its views: R × F grid, segments, RFMD (area) and RFMC (category, state).

Over the window ``[since, as_of]`` (``since=None``: all history) each customer
with at least one net purchase (``base.purchases``) gets

* ``recency_days`` — whole days (24 h) from the last purchase to ``as_of``;
* ``frequency`` — the number of purchases;
* ``monetary`` — the sum of their net amounts (total minus refunds);

then scores 1–5, a named segment and a customer state as ``rfm_rules`` documents.
Customers without a purchase in the window are not in the result. The
aggregation, the scores (window functions), the segment and the state (``CASE``
compiled from the rule tables) all run in SQL; pandas only attaches the labels.
A window without purchases gives an empty frame with the documented columns.
Amounts are never summed across currencies (``InvalidInput`` when the window's
purchases mix currencies and none is named; see ``distribution.check_currencies``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import UnaryExpression

from kizuna.analytics.base import (
    check_currencies,
    currency_bounds,
    net_lines,
    purchase_window,
    read_checked,
    rolled_up_bounds,
)
from kizuna.analytics.rfm_rules import (
    STATES,
    QuintileScoring,
    RfmConfig,
    SegmentRules,
    StateRules,
    ThresholdScoring,
)
from kizuna.analytics.sql import as_of_param
from kizuna.domain.regions import REGIONS, UNKNOWN_AREA, UNKNOWN_AREA_EN, find_prefecture
from kizuna.store.frames import fetch_frame
from kizuna.store.tables import customers
from kizuna.store.workspaces import Workspace

__all__ = [
    "AREA_COLUMNS",
    "CATEGORY_COLUMNS",
    "GRID_COLUMNS",
    "RFM_COLUMNS",
    "SEGMENT_COLUMNS",
    "STATE_COLUMNS",
    "rfm",
    "rfm_by_area",
    "rfm_by_category",
    "rfm_by_state",
    "rfm_grid",
    "rfm_segments",
    "scored_customers",
]

_DAY = 86_400


def _epoch_micros(stored: Any) -> sa.ColumnElement[int]:
    """SQLite: microseconds since the epoch of stored ``YYYY-MM-DD HH:MM:SS.ffffff`` text."""
    # strftime() rounds fractions to milliseconds, so whole seconds and microseconds are split.
    seconds = sa.cast(sa.func.strftime("%s", sa.func.substr(stored, 1, 19)), sa.Integer)
    return seconds * 1_000_000 + sa.cast(sa.func.substr(stored, 21, 6), sa.Integer)


def _whole_days(
    as_of: datetime, last: sa.ColumnElement[datetime], dialect: str
) -> sa.ColumnElement[int]:
    moment = as_of_param(as_of, "as_of_recency")
    if dialect == "sqlite":
        return (_epoch_micros(moment) - _epoch_micros(last)) // (_DAY * 1_000_000)
    return sa.cast(sa.func.floor(sa.extract("epoch", moment - last) / _DAY), sa.Integer)


def _customer_key(window: sa.Subquery, dialect: str) -> sa.ColumnElement[Any]:
    if dialect != "sqlite":
        return window.c.customer_id
    # SQLite's no-op unary "+" hides the column from the planner, which would otherwise
    # walk the customer index with one random row lookup per order to skip a sort;
    # reading rows in table (mostly time) order and sorting is two to three times faster.
    plus: operators.custom_op[Any] = operators.custom_op("+")
    return UnaryExpression(window.c.customer_id, operator=plus, type_=sa.Uuid())


def _summary(window: sa.Subquery, as_of: datetime, dialect: str) -> sa.Subquery:
    last = sa.func.max(window.c.ordered_at)
    customer = _customer_key(window, dialect)
    return (
        sa.select(
            customer.label("customer_id"),
            sa.func.min(window.c.ordered_at).label("first_purchase_at"),
            last.label("last_purchase_at"),
            _whole_days(as_of, last, dialect).label("recency_days"),
            sa.func.count().label("frequency"),
            sa.func.sum(window.c.amount).label("monetary"),
            *currency_bounds(window.c.currency),
        )
        .group_by(customer)
        .subquery("summary")
    )


def _quintile(order_by: sa.ColumnElement[object]) -> sa.ColumnElement[int]:
    # RANK() gives tied customers the position of the first of them: equal values, equal score.
    position = sa.func.rank().over(order_by=order_by) - 1
    return 1 + (5 * position) // sa.func.count().over()


def _at_most(column: sa.ColumnElement[int], cuts: tuple[float, ...]) -> sa.ColumnElement[int]:
    whens = [(column <= cut, 5 - k) for k, cut in enumerate(cuts)]
    return sa.case(*whens, else_=1)


def _at_least(column: sa.ColumnElement[float], cuts: tuple[float, ...]) -> sa.ColumnElement[int]:
    whens = [(column >= cut, k + 2) for k, cut in reversed(list(enumerate(cuts)))]
    return sa.case(*whens, else_=1)


def _scores(s: sa.Subquery, scoring: QuintileScoring | ThresholdScoring) -> sa.Subquery:
    if isinstance(scoring, ThresholdScoring):
        r = _at_most(s.c.recency_days, scoring.recency_days)
        f = _at_least(s.c.frequency, scoring.frequency)
        m = _at_least(s.c.monetary, scoring.monetary)
    else:
        # Worst first, so rank 1 (score 1) is the longest ago, fewest, smallest.
        r = _quintile(s.c.recency_days.desc())
        f = _quintile(s.c.frequency.asc())
        m = _quintile(s.c.monetary.asc())
    return sa.select(s, r.label("r_score"), f.label("f_score"), m.label("m_score")).subquery(
        "scores"
    )


def _segment(sc: sa.Subquery, rules: SegmentRules) -> sa.ColumnElement[str]:
    whens: list[tuple[sa.ColumnElement[bool], str]] = []
    for rule in rules.rules:
        ranges = ((sc.c.r_score, rule.recency), (sc.c.f_score, rule.frequency),
                  (sc.c.m_score, rule.monetary))  # fmt: skip
        tests = [col.between(lo, hi) for col, (lo, hi) in ranges if (lo, hi) != (1, 5)]
        if not tests:  # a catch-all: later rules can never match
            return sa.case(*whens, else_=rule.key) if whens else sa.literal(rule.key)
        whens.append((sa.and_(*tests), rule.key))
    # Rule tables cover every score triple (SegmentRules checks), so ELSE is never taken.
    return sa.case(*whens, else_=rules.rules[-1].key)


def _state(sc: sa.Subquery, states: StateRules) -> sa.ColumnElement[str]:
    return sa.case(
        (sc.c.recency_days > states.dormant_after_days, "dormant"),
        (sc.c.frequency <= 1, "new"),
        (sc.c.frequency >= states.loyal_orders, "loyal"),
        (sc.c.frequency >= states.good_orders, "good"),
        else_="stable",
    )


def scored_customers(
    window: sa.Subquery, *, as_of: datetime, dialect: str, config: RfmConfig | None = None
) -> sa.Select[tuple[object, ...]]:
    """The RFM query over a purchase window: one row per customer with scores, segment, state."""
    config = config or RfmConfig()
    sc = _scores(_summary(window, as_of, dialect), config.scoring)
    return sa.select(
        sc,
        _segment(sc, config.segments).label("segment"),
        _state(sc, config.states).label("state"),
    )


def _scored_cte(
    conn: Connection,
    workspace: Workspace,
    as_of: datetime,
    since: datetime | None,
    currency: str | None,
    config: RfmConfig | None,
) -> sa.CTE:
    window = purchase_window(workspace, as_of=as_of, since=since, currency=currency)
    dialect = conn.dialect.name
    return scored_customers(window, as_of=as_of, dialect=dialect, config=config).cte("scored")


def _empty(columns: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def _typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    if frame.empty:
        return _empty(columns)
    return frame[list(columns)].astype(columns).reset_index(drop=True)


def _with_segment_labels(frame: pd.DataFrame, rules: SegmentRules) -> pd.DataFrame:
    return frame.merge(rules.labels(), on="segment", how="left")


def _with_state_labels(frame: pd.DataFrame) -> pd.DataFrame:
    frame["state_ja"] = frame["state"].map({k: v[0] for k, v in STATES.items()})
    frame["state_en"] = frame["state"].map({k: v[1] for k, v in STATES.items()})
    frame["state_order"] = frame["state"].map({k: i for i, k in enumerate(STATES)})
    return frame


_UTC = "datetime64[us, UTC]"
RFM_COLUMNS = {
    "customer_id": "str", "first_purchase_at": _UTC, "last_purchase_at": _UTC,
    "recency_days": "int64", "frequency": "int64", "monetary": "float64", "r_score": "int64",
    "f_score": "int64", "m_score": "int64", "rfm_code": "str", "segment": "str",
    "segment_ja": "str", "segment_en": "str", "state": "str", "state_ja": "str",
    "state_en": "str",
}  # fmt: skip


def rfm(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    config: RfmConfig | None = None,
) -> pd.DataFrame:
    """RFM values, scores, segment and state for every customer who bought in the window.

    Columns: ``customer_id``, ``first_purchase_at`` and ``last_purchase_at`` (UTC, in
    the window), ``recency_days``, ``frequency``, ``monetary``, ``r_score``,
    ``f_score``, ``m_score`` (1–5), ``rfm_code`` (e.g. ``"545"``), ``segment`` (rule
    key), ``segment_ja``, ``segment_en``, ``state`` (new, stable, good, loyal,
    dormant), ``state_ja``, ``state_en``. Rows are in no particular order.
    """
    config = config or RfmConfig()
    scored = _scored_cte(conn, workspace, as_of, since, currency, config)
    times = ("first_purchase_at", "last_purchase_at")
    fetched = fetch_frame(conn, sa.select(scored), uuids=("customer_id",), timestamps=times)
    frame = check_currencies(conn, workspace, fetched, as_of=as_of, currency=currency)
    if frame.empty:
        return _empty(RFM_COLUMNS)
    frame["rfm_code"] = (
        frame["r_score"].astype(str) + frame["f_score"].astype(str) + frame["m_score"].astype(str)
    )
    labels = config.segments.labels().set_index("segment")
    frame["segment_ja"] = frame["segment"].map(labels["segment_ja"])
    frame["segment_en"] = frame["segment"].map(labels["segment_en"])
    return _typed(_with_state_labels(frame), RFM_COLUMNS)


GRID_COLUMNS = {
    "r_score": "int64", "f_score": "int64", "customers": "int64", "customer_share": "float64",
    "revenue": "float64", "revenue_share": "float64", "avg_monetary": "float64",
}  # fmt: skip


def rfm_grid(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    config: RfmConfig | None = None,
) -> pd.DataFrame:
    """Customers and revenue per R × F cell: all 25 cells, R then F ascending, zero-filled.

    Columns: ``r_score``, ``f_score``, ``customers``, ``customer_share``, ``revenue``,
    ``revenue_share``, ``avg_monetary`` (0 for an empty cell).
    """
    scored = _scored_cte(conn, workspace, as_of, since, currency, config)
    cells = (scored.c.r_score, scored.c.f_score)
    query = sa.select(
        *cells,
        sa.func.count().label("customers"),
        sa.func.sum(scored.c.monetary).label("revenue"),
        *rolled_up_bounds(scored),
    ).group_by(*cells)
    frame = read_checked(conn, workspace, query, as_of=as_of, currency=currency)
    if frame.empty:
        return _empty(GRID_COLUMNS)
    every = pd.MultiIndex.from_product([range(1, 6), range(1, 6)], names=["r_score", "f_score"])
    frame = frame.set_index(["r_score", "f_score"]).reindex(every, fill_value=0).reset_index()
    frame["customer_share"] = frame["customers"] / frame["customers"].sum()
    frame["revenue_share"] = frame["revenue"] / frame["revenue"].sum()
    frame["avg_monetary"] = (
        frame["revenue"] / frame["customers"].where(frame["customers"] > 0)
    ).fillna(0.0)
    return _typed(frame, GRID_COLUMNS)


SEGMENT_COLUMNS = {
    "segment": "str", "segment_ja": "str", "segment_en": "str", "customers": "int64",
    "customer_share": "float64", "revenue": "float64", "revenue_share": "float64",
    "avg_recency_days": "float64", "avg_frequency": "float64", "avg_monetary": "float64",
}  # fmt: skip


def rfm_segments(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    config: RfmConfig | None = None,
) -> pd.DataFrame:
    """One row per segment of the rule table, in rule order, zero-filled.

    Columns: ``segment``, ``segment_ja``, ``segment_en``, ``customers``,
    ``customer_share``, ``revenue``, ``revenue_share``, ``avg_recency_days``,
    ``avg_frequency``, ``avg_monetary`` (averages are 0 for an empty segment).
    """
    config = config or RfmConfig()
    scored = _scored_cte(conn, workspace, as_of, since, currency, config)
    query = sa.select(
        scored.c.segment,
        sa.func.count().label("customers"),
        sa.func.sum(scored.c.monetary).label("revenue"),
        sa.func.sum(scored.c.recency_days).label("recency_total"),
        sa.func.sum(scored.c.frequency).label("frequency_total"),
        *rolled_up_bounds(scored),
    ).group_by(scored.c.segment)
    found = read_checked(conn, workspace, query, as_of=as_of, currency=currency)
    if found.empty:
        return _empty(SEGMENT_COLUMNS)
    frame = config.segments.labels().merge(found, on="segment", how="left").fillna(0)
    people = frame["customers"].where(frame["customers"] > 0)
    frame["customer_share"] = frame["customers"] / frame["customers"].sum()
    frame["revenue_share"] = frame["revenue"] / frame["revenue"].sum()
    frame["avg_recency_days"] = (frame["recency_total"] / people).fillna(0.0)
    frame["avg_frequency"] = (frame["frequency_total"] / people).fillna(0.0)
    frame["avg_monetary"] = (frame["revenue"] / people).fillna(0.0)
    return _typed(frame, SEGMENT_COLUMNS)


AREA_COLUMNS = {
    "area": "str", "area_en": "str", "segment": "str", "segment_ja": "str", "segment_en": "str",
    "customers": "int64", "customer_share": "float64", "revenue": "float64",
    "revenue_share": "float64",
}  # fmt: skip


def _areas(prefectures: pd.Series, level: Literal["prefecture", "region"]) -> pd.DataFrame:
    """Area name, English name and display order for each distinct stored prefecture value."""
    region_order = {r.key: i for i, r in enumerate(REGIONS)}
    rows = []
    for stored in prefectures.dropna().unique().tolist():  # distinct values: at most ~50
        p = find_prefecture(str(stored))
        if p is None:
            rows.append((stored, UNKNOWN_AREA, UNKNOWN_AREA_EN, 99))
        elif level == "region":
            rows.append((stored, p.region.name_ja, p.region.name_en, region_order[p.region.key]))
        else:
            rows.append((stored, p.name_ja, p.name_en, int(p.code)))
    columns = ["prefecture", "area", "area_en", "area_order"]
    return pd.DataFrame(rows, columns=columns).astype({"prefecture": "str"})


def rfm_by_area(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    config: RfmConfig | None = None,
    level: Literal["prefecture", "region"] = "prefecture",
) -> pd.DataFrame:
    """RFMD: customers and revenue per area (prefecture or region) and segment.

    Columns: ``area`` (Japanese name, e.g. 東京都 or 関東), ``area_en``, ``segment``,
    ``segment_ja``, ``segment_en``, ``customers``, ``customer_share`` and
    ``revenue_share`` (within the area), ``revenue``. Areas run north to south (JIS
    order), segments in rule order; a missing or unrecognised prefecture counts as
    不明 / Unknown, last; area–segment pairs without customers are left out.
    """
    config = config or RfmConfig()
    scored = _scored_cte(conn, workspace, as_of, since, currency, config)
    c = customers
    joined = scored.outerjoin(
        c,
        sa.and_(
            c.c.workspace_id == workspace.workspace_id, c.c.customer_id == scored.c.customer_id
        ),
    )
    query = (
        sa.select(c.c.prefecture, scored.c.segment, sa.func.count().label("customers"),
                  sa.func.sum(scored.c.monetary).label("revenue"), *rolled_up_bounds(scored))
        .select_from(joined)
        .group_by(c.c.prefecture, scored.c.segment)
    )  # fmt: skip
    found = read_checked(conn, workspace, query, as_of=as_of, currency=currency)
    if found.empty:
        return _empty(AREA_COLUMNS)
    found["prefecture"] = found["prefecture"].fillna("").astype("str")
    named = found.merge(_areas(found["prefecture"], level), on="prefecture", how="left")
    named = named.fillna({"area": UNKNOWN_AREA, "area_en": UNKNOWN_AREA_EN, "area_order": 99})
    keys = ["area_order", "area", "area_en", "segment"]
    frame = named.groupby(keys, as_index=False)[["customers", "revenue"]].sum()
    frame = _with_segment_labels(frame, config.segments)
    totals = frame.groupby("area")[["customers", "revenue"]].transform("sum")
    frame["customer_share"] = frame["customers"] / totals["customers"]
    frame["revenue_share"] = frame["revenue"] / totals["revenue"]
    frame = frame.sort_values(["area_order", "segment_order"])
    return _typed(frame, AREA_COLUMNS)


CATEGORY_COLUMNS = {
    "segment": "str", "segment_ja": "str", "segment_en": "str", "value": "str",
    "customers": "int64", "segment_customers": "int64", "customer_share": "float64",
    "revenue": "float64", "revenue_share": "float64", "units": "int64",
}  # fmt: skip


def rfm_by_category(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    config: RfmConfig | None = None,
    by: Literal["category", "brand"] = "category",
) -> pd.DataFrame:
    """RFMC by product: what each segment buys, per category (or brand).

    Columns: ``segment``, ``segment_ja``, ``segment_en``, ``value`` (the category
    or brand; ``(none)`` when the line has none), ``customers`` (segment members
    who bought it), ``segment_customers``, ``customer_share`` (customers /
    segment_customers), ``revenue`` (net line revenue, see ``distribution``),
    ``revenue_share`` (of the segment's line revenue), ``units``. Segments in rule
    order, values by revenue descending.
    """
    config = config or RfmConfig()
    window = purchase_window(workspace, as_of=as_of, since=since, currency=currency)
    query = scored_customers(window, as_of=as_of, dialect=conn.dialect.name, config=config)
    scored = query.cte("scored")
    sizes = (
        sa.select(scored.c.segment, sa.func.count().label("segment_customers"))
        .group_by(scored.c.segment)
        .subquery("sizes")
    )
    lines = net_lines(window, workspace).subquery("lines")
    value = lines.c[by]
    mix = (
        sa.select(
            scored.c.segment,
            value.label("value"),
            sa.func.count(sa.distinct(lines.c.customer_id)).label("customers"),
            sa.func.sum(lines.c.revenue).label("revenue"),
            sa.func.sum(lines.c.units).label("units"),
            *rolled_up_bounds(scored),
        )
        .select_from(lines.join(scored, scored.c.customer_id == lines.c.customer_id))
        .group_by(scored.c.segment, value)
        .subquery("mix")
    )
    query = sa.select(mix, sizes.c.segment_customers).join_from(
        mix, sizes, mix.c.segment == sizes.c.segment
    )
    found = read_checked(conn, workspace, query, as_of=as_of, currency=currency)
    if found.empty:
        return _empty(CATEGORY_COLUMNS)
    frame = _with_segment_labels(found, config.segments)
    frame["customer_share"] = frame["customers"] / frame["segment_customers"]
    frame["revenue_share"] = frame["revenue"] / frame.groupby("segment")["revenue"].transform("sum")
    frame = frame.sort_values(["segment_order", "revenue", "value"], ascending=[True, False, True])
    return _typed(frame, CATEGORY_COLUMNS)


STATE_COLUMNS = {
    "state": "str", "state_ja": "str", "state_en": "str", "segment": "str", "segment_ja": "str",
    "segment_en": "str", "customers": "int64", "customer_share": "float64", "revenue": "float64",
    "avg_monetary": "float64",
}  # fmt: skip


def rfm_by_state(
    conn: Connection,
    workspace: Workspace,
    *,
    as_of: datetime,
    since: datetime | None = None,
    currency: str | None = None,
    config: RfmConfig | None = None,
) -> pd.DataFrame:
    """RFMC by customer state: customers and revenue per state (new … dormant) and segment.

    Columns: ``state``, ``state_ja``, ``state_en``, ``segment``, ``segment_ja``,
    ``segment_en``, ``customers``, ``customer_share`` (within the state), ``revenue``,
    ``avg_monetary``. States in ``STATES`` order, segments in rule order; pairs
    without customers are left out. States are defined by ``StateRules``.
    """
    config = config or RfmConfig()
    scored = _scored_cte(conn, workspace, as_of, since, currency, config)
    keys = (scored.c.state, scored.c.segment)
    query = sa.select(
        *keys,
        sa.func.count().label("customers"),
        sa.func.sum(scored.c.monetary).label("revenue"),
        *rolled_up_bounds(scored),
    ).group_by(*keys)
    found = read_checked(conn, workspace, query, as_of=as_of, currency=currency)
    if found.empty:
        return _empty(STATE_COLUMNS)
    frame = _with_state_labels(_with_segment_labels(found, config.segments))
    frame["customer_share"] = frame["customers"] / frame.groupby("state")["customers"].transform(
        "sum"
    )
    frame["avg_monetary"] = frame["revenue"] / frame["customers"]
    frame = frame.sort_values(["state_order", "segment_order"])
    return _typed(frame, STATE_COLUMNS)
