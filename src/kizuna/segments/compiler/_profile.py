"""Leaves on the profile itself: traits, birthday, location, stored metrics, random buckets."""

from __future__ import annotations

import calendar
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from kizuna.domain.regions import PREFECTURES, find_prefecture, find_region, prefecture_names
from kizuna.errors import InvalidInput, Problem
from kizuna.segments.compiler._context import Builder, at
from kizuna.segments.compiler._dates import date_range, in_range, local_date_text
from kizuna.segments.compiler._values import Kind, compare, json_reader
from kizuna.segments.definition import (
    DAY_OPS,
    Birthday,
    Bucket,
    Location,
    MetricCondition,
    TraitCondition,
)
from kizuna.segments.vocabulary import ATTRIBUTE_PREFIX, METRICS, trait_kind
from kizuna.store.tables import customer_metrics, customers

__all__ = [
    "birthday_days",
    "compile_birthday",
    "compile_bucket",
    "compile_location",
    "compile_metric",
    "compile_trait",
]

DATE_OPS = DAY_OPS | {"before", "after", "between"}


def compile_trait(node: TraitCondition, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """A trait compared with a value (attributes are read from the JSON document)."""
    kind = trait_kind(node.trait)
    c = customers.c
    if kind == "attribute":
        read = json_reader(
            c.attributes, node.trait[len(ATTRIBUTE_PREFIX) :].split("."), b.ctx.dialect
        )
        if node.op in DATE_OPS:
            return _text_dates(read("text"), node.op, node.value, b, where)
        return compare(read, node.op, node.value, where)
    if kind == "personal":
        if node.op not in ("exists", "not_exists"):
            raise InvalidInput(Problem("encrypted_trait", _ENCRYPTED, at(where, "op")))
        present = c[f"{node.trait}_enc"].is_not(None)
        return present if node.op == "exists" else sa.not_(present)
    if kind == "date":
        return _dates(c[node.trait], node.op, node.value, b, where)
    if kind == "text":
        column = c[node.trait]
        return compare(lambda k: column if k == "text" else None, node.op, node.value, where)
    raise InvalidInput(Problem("unknown_trait", f"unknown trait {node.trait}", at(where, "trait")))


_ENCRYPTED = "this trait is stored encrypted: only exists / not_exists can be asked"


def _dates(column: Any, op: str, value: object, b: Builder, where: str) -> sa.ColumnElement[bool]:
    if op in ("exists", "not_exists"):
        present: sa.ColumnElement[bool] = column.is_not(None)
        return present if op == "exists" else sa.not_(present)
    if op not in DATE_OPS:
        raise InvalidInput(
            Problem("type_mismatch", f"{op} does not apply to a date", at(where, "op"))
        )
    ctx = b.ctx
    return in_range(
        column, date_range(op, value, ctx.now, ctx.workspace.time_zone, at(where, "value"))
    )


def _text_dates(
    column: Any, op: str, value: object, b: Builder, where: str
) -> sa.ColumnElement[bool]:
    zone = b.ctx.workspace.time_zone
    bounds = date_range(op, value, b.ctx.now, zone, at(where, "value"))
    tests = [column.is_not(None)]
    if bounds.start is not None:
        tests.append(column >= local_date_text(bounds.start, zone))
    if bounds.end is not None:
        tests.append(column < local_date_text(bounds.end, zone))
    return sa.and_(*tests)


def birthday_days(node: Birthday, b: Builder) -> list[str]:
    """The ``MM-DD`` days a birthday condition accepts (Feb 29 counts on Feb 28 off leap years)."""
    if node.month is not None:
        last = 29 if node.month == 2 else calendar.monthrange(2001, node.month)[1]
        return [f"{node.month:02d}-{d:02d}" for d in range(1, last + 1)]
    today = b.ctx.now.astimezone(ZoneInfo(b.ctx.workspace.time_zone)).date()
    days = [today + timedelta(days=n) for n in range(int(node.within_next_days or 0) + 1)]
    texts = [d.strftime("%m-%d") for d in days]
    texts += ["02-29" for d in days if d.month == 2 and d.day == 28 and not calendar.isleap(d.year)]
    return sorted(set(texts))


def compile_birthday(node: Birthday, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """The birthday (its month and day, kept in clear) falls in the asked days."""
    return customers.c.birth_md.in_(birthday_days(node, b))


def compile_location(node: Location, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """Lives in one of the prefectures, or in a prefecture of one of the regions."""
    chosen = []
    for index, name in enumerate(node.prefectures):
        found = find_prefecture(name)
        if found is None:
            raise InvalidInput(
                Problem(
                    "unknown_prefecture",
                    f"unknown prefecture {name}",
                    at(where, f"prefectures[{index}]"),
                )
            )
        chosen.append(found)
    for index, name in enumerate(node.regions):
        region = find_region(name)
        if region is None:
            raise InvalidInput(
                Problem("unknown_region", f"unknown region {name}", at(where, f"regions[{index}]"))
            )
        chosen.extend(p for p in PREFECTURES if p.region == region)
    names = sorted({n for p in chosen for n in prefecture_names(p)})
    return customers.c.prefecture.in_(names)


def compile_metric(node: MetricCondition, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """A value the analytics refresh stored in ``customer_metrics``."""
    m = b.join(sa.select(customer_metrics).where(*b.scoped(customer_metrics)), "metrics")
    column = m.c[node.metric]
    kind = METRICS.get(node.metric)
    if kind == "date":
        return _dates(column, node.op, node.value, b, where)
    if node.op in DATE_OPS:
        raise InvalidInput(
            Problem("type_mismatch", f"{node.metric} is not a date", at(where, "op"))
        )

    def read(wanted: Kind) -> Any:
        return column if wanted == kind else None

    return compare(read, node.op, node.value, where)


def compile_bucket(node: Bucket, b: Builder, where: str) -> sa.ColumnElement[bool]:
    """The customer's deterministic bucket lies in ``[start, end]``."""
    c = customers.c
    if b.ctx.dialect == "sqlite":
        bucket: Any = sa.func.kizuna_bucket(c.customer_id, node.salt, node.buckets)
    else:
        text = sa.literal(f"{node.salt}:") + sa.cast(c.customer_id, sa.Text)
        head = sa.literal("x") + sa.func.substr(sa.func.md5(text), 1, 8)
        bucket = sa.cast(sa.cast(head, postgresql.BIT(32)), sa.BigInteger) % node.buckets
    return sa.and_(bucket >= node.start, bucket <= node.end)
