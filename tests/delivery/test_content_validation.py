"""Templates are checked before they are saved; saved ones are versioned; blocks too."""

from __future__ import annotations

import pytest

from kizuna.content.library import save_block, save_template, validate_template
from kizuna.content.spec import parse_template_spec
from kizuna.errors import InvalidInput, NotFound
from kizuna.store.templates import archive_template, get_block, get_template, list_templates
from tests.delivery.test_content_context import build_content_shop


@pytest.fixture
def shop(db, workspace):
    return build_content_shop(db, workspace)


def _spec(body, channel="sms", **extra):
    return parse_template_spec({"key": "t1", "channel": channel, "name": "テスト", "body": body,
                                **extra})  # fmt: skip


def _problems(scope, body, **extra):
    return [(p.code, p.field, p.line) for p in validate_template(scope, _spec(body, **extra))]


def test_a_syntax_error_names_its_part_and_line(scope_factory, shop):
    with scope_factory() as scope, pytest.raises(InvalidInput) as error:
        save_template(scope, _spec("一行目\n{% for p in recommended %}\n{{ p.name }}\n"), "me")
    (problem,) = error.value.problems
    assert (problem.code, problem.field, problem.line) == ("template_syntax", "body", 3)
    with scope_factory() as scope:
        subject = parse_template_spec({"key": "e", "channel": "email", "name": "x",
                                       "subject": "{{ last_name ", "body": "ok"})  # fmt: skip
        assert [(p.field, p.line) for p in validate_template(scope, subject)] == [("subject", 1)]


def test_unknown_names_are_reported_with_their_line_unless_guarded(scope_factory, shop):
    body = """{{ last_name | default("お客") }}様
{{ frist_name | default("") }}
{% if last_order %}ご注文番号: {{ last_order.numbr }}{% endif %}
{% if coupon_code %}クーポン{% endif %}
{% for p in recently_viewed %}{{ p.nmae }}{% endfor %}
{{ attributes.skin_typo | default("") }}{% if attributes.hair == "dry" %}{% endif %}
"""
    with scope_factory() as scope:
        found = _problems(scope, body)
    assert found == [
        ("unknown_variable", "body", 3),  # last_order.numbr
        ("unknown_variable", "body", 4),  # coupon_code (an if does not guard a typo)
        ("unknown_variable", "body", 5),  # recently_viewed[].nmae
        ("unknown_variable", "body", 6),  # attributes.hair: no customer has that attribute
    ]
    with scope_factory() as scope:
        messages = [p.message for p in validate_template(scope, _spec(body))]
    assert messages[0].startswith("last_order.numbr is not a value templates have")
    assert messages[2].startswith("recently_viewed[].nmae is not")


def test_values_some_customers_lack_need_a_fallback(scope_factory, shop):
    with scope_factory() as scope:
        assert _problems(scope, "{{ first_name }}様\n{{ last_order.total | yen }}") == [
            ("missing_fallback", "body", 1), ("missing_fallback", "body", 2)]  # fmt: skip
        guarded = ('{{ first_name | default("お客") }}様\n'
                   "{% if last_order %}{{ last_order.total | yen }}{% endif %}\n"
                   "{% if first_name is defined %}{{ first_name }}{% endif %}\n"
                   "{% for p in recommended %}{{ p.name }}{% endfor %}")  # fmt: skip
        assert _problems(scope, guarded) == []
        assert _problems(scope, "{% for p in recommended %}{{ p.price | yen }}{% endfor %}") == [
            ("missing_fallback", "body", 1)]  # fmt: skip


def test_declared_params_are_known_and_sample_values_are_used(scope_factory, shop):
    body = "ご注文 {{ order.number }} / {{ order.total | yen }}"
    with scope_factory() as scope:
        assert {p[0] for p in _problems(scope, body)} == {"unknown_variable"}
        assert _problems(scope, body, params={"order": {"number": "A-1", "total": 5500}}) == []
        wrong = _problems(scope, body, params={"order": {"number": "A-1", "total": "5千円"}})
    assert wrong == [("render_failed", "body", 1)]  # yen needs a number


def test_sandbox_escapes_are_refused_at_save(scope_factory, shop):
    with scope_factory() as scope, pytest.raises(InvalidInput, match="unsafe"):
        save_template(scope, _spec("{{ ''.__class__.__mro__ }}"), "me")


def test_an_empty_workspace_validates_against_the_documented_sample(scope_factory):
    with scope_factory() as scope:
        assert _problems(scope, '{{ last_name | default("お客") }}様 {{ sender.name }}') == []
        assert _problems(scope, "{{ attributes.anything | default('') }}") == []
        assert _problems(scope, "{% if attributes.anything %}x{% endif %}") == [
            ("unknown_variable", "body", 1)]  # fmt: skip
        # The validator's own bookkeeping is invisible to templates.
        assert _problems(scope, "{% if cart %}{{ cart.path }}{% endif %}") == [
            ("unknown_variable", "body", 1)]  # fmt: skip


def test_saving_bumps_the_version_only_when_the_template_changes(scope_factory, shop):
    with scope_factory() as scope:
        first = save_template(scope, _spec("こんにちは"), "alice")
        same = save_template(scope, _spec("こんにちは"), "bob")
        changed = save_template(scope, _spec("こんばんは"), "bob")
        assert (first.version, same.version, changed.version) == (1, 1, 2)
        assert (same.created_by, changed.created_by) == ("alice", "bob")
        assert [t.key for t in list_templates(scope)] == ["t1"]
        archive_template(scope, "t1")
        with pytest.raises(NotFound):
            get_template(scope, "t1")
        assert list_templates(scope) == []
        revived = save_template(scope, _spec("こんばんは"), "carol")
        assert revived.version == 3 and revived.archived_at is None


def test_blocks_are_checked_and_cannot_break_templates_that_include_them(scope_factory, shop):
    with scope_factory() as scope:
        save_block(scope, "signature", "--\n{{ sender.name }}\n", "alice")
        assert _problems(scope, '本文\n{% include "block:nope" %}') == [
            ("render_failed", "body", 2)]  # fmt: skip
        saved = save_template(scope, _spec('本文\n{% include "block:signature" %}'), "alice")
        assert saved.version == 1
        with pytest.raises(InvalidInput) as syntax:
            save_block(scope, "signature", "--\n{{ sender.name ", "alice")
        assert [(p.field, p.line) for p in syntax.value.problems] == [("body", 2)]
        with pytest.raises(InvalidInput) as breaking:
            save_block(scope, "signature", "--\n{{ sender.nmae }}\n", "alice")
        (problem,) = breaking.value.problems
        assert problem.code == "unknown_variable" and problem.field.startswith("templates.t1.")
        assert get_block(scope, "signature").body == "--\n{{ sender.name }}\n"
        with pytest.raises(InvalidInput, match="a-z"):
            save_block(scope, "Bad Key", "x", "alice")


def test_channel_rules_are_checked_with_field_paths():
    with pytest.raises(InvalidInput) as error:
        parse_template_spec(
            {"key": "x", "channel": "email", "name": "x", "html": "<p>", "data": {}}
        )
    assert {(p.code, p.field) for p in error.value.problems} == {
        ("required", "subject"), ("required", "body")}  # fmt: skip
    with pytest.raises(InvalidInput) as error:
        line = {"type": "text", "text": "t"}
        parse_template_spec({"key": "x", "channel": "sms", "name": "x", "body": "b",
                             "subject": "s", "messages": [line]})  # fmt: skip
    assert {(p.code, p.field) for p in error.value.problems} == {
        ("not_for_channel", "subject"), ("not_for_channel", "messages")}  # fmt: skip
    with pytest.raises(InvalidInput) as error:
        parse_template_spec({"key": "x", "channel": "line", "name": "x",
                             "messages": [{"text": "t"}] * 6})  # fmt: skip
    assert [p.field for p in error.value.problems] == ["messages"]
    with pytest.raises(InvalidInput) as error:
        parse_template_spec({"key": "blocks", "channel": "line", "name": "x",
                             "messages": [{"text": "t"}]})  # fmt: skip
    assert {p.field for p in error.value.problems} == {"key", "messages[0].type"}
