"""Saving segments: checked against the workspace, replaced by key, archived, dependants updated."""

from __future__ import annotations

from typing import Any

import pytest

from kizuna.domain.records import CustomerTraits, Identifiers
from kizuna.errors import InvalidInput, NotFound
from kizuna.segments.definition import parse_spec
from kizuna.store.customers import apply_traits
from kizuna.store.identity import IdentityResolver
from kizuna.store.segments import (
    archive_segment,
    get_segment,
    list_segments,
    load_vocabulary,
    save_segment,
)
from kizuna.store.tables import events
from kizuna.store.types import new_id


def _spec(key: str, condition: dict[str, Any], rank: int | None = None) -> Any:
    return parse_spec({"key": key, "name": key.title(), "rank": rank, "condition": condition})


def _seed(scope: Any) -> None:
    resolver = IdentityResolver(scope)
    customer = resolver.resolve(Identifiers(user_id="C1"), scope.now)
    resolver.flush()
    apply_traits(scope, customer, CustomerTraits(attributes={"skin_type": "dry"}))
    scope.conn.execute(
        events.insert().values(
            workspace_id=scope.workspace_id,
            customer_id=customer,
            event_id=new_id(),
            message_id="m1",
            type="track",
            name="Review Posted",
            properties={},
            context={},
            occurred_at=scope.now,
            received_at=scope.now,
        )
    )


def test_a_segment_is_saved_replaced_listed_and_archived(scope_factory: Any) -> None:
    with scope_factory() as scope:
        _seed(scope)
        saved = save_segment(
            scope,
            _spec(
                "dry",
                {"type": "trait", "trait": "attributes.skin_type", "op": "eq", "value": "dry"},
                rank=2,
            ),
            "alice",
        )
        assert saved.depends_on == {"traits"} and saved.created_by == "alice"
        save_segment(
            scope,
            _spec(
                "reviewers",
                {"type": "event", "name": "Review Posted", "within": {"days": 30}},
                rank=1,
            ),
            "alice",
        )
        replaced = save_segment(scope, _spec("dry", {"type": "orders"}), "bob")
        assert replaced.segment_id == saved.segment_id and replaced.depends_on == {"orders"}
        assert replaced.created_by == "alice"
        assert [s.key for s in list_segments(scope)] == ["reviewers", "dry"]
        archive_segment(scope, "dry")
        with pytest.raises(NotFound):
            get_segment(scope, "dry")
        assert (
            save_segment(scope, _spec("dry", {"type": "orders"}), "bob").segment_id
            != saved.segment_id
        )


def test_unknown_names_are_rejected_and_nothing_is_saved(scope_factory: Any) -> None:
    with scope_factory() as scope:
        _seed(scope)
        with pytest.raises(InvalidInput) as caught:
            save_segment(
                scope,
                _spec(
                    "bad",
                    {
                        "type": "and",
                        "conditions": [
                            {"type": "event", "name": "Review Posted"},
                            {"type": "event", "name": "Teleported"},
                            {"type": "trait", "trait": "attributes.hair", "op": "exists"},
                        ],
                    },
                ),
                "alice",
            )
        assert [(p.code, p.field) for p in caught.value.problems] == [
            ("unknown_event", "condition.conditions[1].name"),
            ("unknown_trait", "condition.conditions[2].trait"),
        ]
        assert list_segments(scope) == []
        assert load_vocabulary(scope).attributes == {"skin_type"}


def test_dependants_follow_a_referenced_segment(scope_factory: Any) -> None:
    with scope_factory() as scope:
        _seed(scope)
        save_segment(scope, _spec("base", {"type": "orders"}), "alice")
        save_segment(scope, _spec("top", {"type": "segment", "segment": "base"}), "alice")
        assert get_segment(scope, "top").depends_on == {"orders", "segment:base"}
        save_segment(scope, _spec("base", {"type": "event", "name": "Review Posted"}), "alice")
        assert get_segment(scope, "top").depends_on == {"event:Review Posted", "segment:base"}
        with pytest.raises(InvalidInput) as caught:
            archive_segment(scope, "base")
        assert caught.value.problems[0].code == "segment_in_use"
        with pytest.raises(InvalidInput) as caught:
            save_segment(scope, _spec("base", {"type": "segment", "segment": "top"}), "alice")
        assert caught.value.problems[0].code == "segment_cycle"
