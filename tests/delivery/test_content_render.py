"""Rendering in the sandbox: Japanese content, fallbacks, filters, blocks, escapes refused."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from kizuna.content.context import message_context
from kizuna.content.environment import ContentEnvironment, RenderError
from kizuna.content.render import CompiledTemplate, render
from kizuna.content.spec import parse_template_spec


def _compiled(channel="sms", blocks=None, **parts):
    spec = parse_template_spec({"key": "t", "channel": channel, "name": "テスト", **parts})
    return CompiledTemplate(ContentEnvironment("Asia/Tokyo", blocks or {}), spec)


def _text(body, context, blocks=None):
    return render(_compiled(body=body, blocks=blocks), context).text


def test_japanese_email_renders_each_part_with_html_escaped_and_text_raw():
    template = _compiled(
        "email",
        subject="{{ last_name }}様、春の新作のご案内",
        body="{{ last_name }} {{ first_name }}様\nいつもご利用ありがとうございます。\n",
        html="<p>{{ last_name }}様</p><p>{{ note }}</p>",
    )
    content = template.render({"last_name": "山田", "first_name": "花子", "note": "<b>&</b>"})
    assert content.subject == "山田様、春の新作のご案内"
    assert content.text == "山田 花子様\nいつもご利用ありがとうございます。\n"
    assert content.html == "<p>山田様</p><p>&lt;b&gt;&amp;&lt;/b&gt;</p>"
    assert _text("{{ note }}", {"note": "<b>&</b>"}) == "<b>&</b>"  # SMS: no escaping


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({}, "お客様様 / お客様"),
        ({"first_name": None}, "お客様様 / お客様"),
        ({"first_name": ""}, "様 / お客様"),  # empty text is a value, unless boolean=true
        ({"first_name": "花子"}, "花子様 / 花子"),
    ],
)
def test_default_replaces_missing_and_none_values(context, expected):
    body = '{{ first_name | default("お客様") }}様 / {{ first_name | default("お客様", true) }}'
    assert _text(body, context) == expected


def test_missing_values_are_falsy_empty_and_chainable_but_never_printed():
    body = ("{% if cart %}cart{% else %}no cart{% endif %}|"
            "{% for p in recommended %}{{ p.name }}{% endfor %}|"
            "{{ last_order.total | default(0) | yen }}|{{ last_order is defined }}")  # fmt: skip
    assert _text(body, {}) == "no cart||¥0|False"
    with pytest.raises(RenderError) as missing:
        _text("こんにちは\n{{ last_name }}様", {})
    assert missing.value.part == "body" and missing.value.line == 2
    assert "last_name is missing" in str(missing.value)
    with pytest.raises(RenderError, match=r"last_order\.number is missing"):
        _text("{{ last_order.number }}", {})
    with pytest.raises(RenderError, match="None"):  # a None that did not come through a context
        _text("{{ coupon }}", {"coupon": None})
    assert message_context({"a": 1}, params={"coupon": None, "b": 2}) == {"a": 1, "b": 2}


def test_yen_number_truncate_filters():
    body = ("{{ 12345 | yen }} {{ 1234.5 | yen }} {{ -500 | yen }} {{ '3,300' | yen }} "
            "{{ 1234567.891 | number(2) }} {{ '春の新作コレクション入荷' | truncate(8) }} "
            "{{ 'short' | truncate(8) }}")  # fmt: skip
    assert _text(body, {}) == "¥12,345 ¥1,235 -¥500 ¥3,300 1,234,567.89 春の新作コレク… short"
    with pytest.raises(RenderError, match="yen needs a number"):
        _text("{{ name | yen }}", {"name": "山田"})


def test_dates_are_shown_in_the_workspace_zone_in_japanese_and_english():
    at = datetime(2026, 3, 31, 16, 30, tzinfo=UTC)  # 2026-04-01 01:30 in Tokyo, a Wednesday
    context = {"at": at, "day": date(2026, 12, 24), "text": "2026-05-05"}
    body = ("{{ at | date }}|{{ at | date('ja_weekday') }}|{{ at | date('en') }}|"
            "{{ at | date('iso') }}|{{ at | datetime }}|{{ day | date('ja_short') }}|"
            "{{ text | date('slash') }}|{{ at | date('%m/%d') }}")  # fmt: skip
    assert _text(body, context) == (
        "2026年4月1日|2026年4月1日(水)|April 1, 2026|2026-04-01|2026年4月1日 01:30|12月24日|"
        "2026/05/05|04/01"
    )
    with pytest.raises(RenderError, match="unknown date format"):
        _text("{{ at | date('fr') }}", context)


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ recommended.__class__.__base__ }}",
        "{{ (1).__class__ }}",
        "{{ 'x' * 10000000 }}",
        "{{ 9 ** 99999 }}",
        "{% for i in range(10**9) %}{% endfor %}",
        "{{ recommended.append(1) }}",
    ],
)
def test_sandbox_escapes_and_resource_abuse_fail(body):
    with pytest.raises(RenderError):
        _text(body, {"recommended": []})


def test_blocks_are_included_and_escaped_like_their_part():
    blocks = {"signature": "--\n{{ sender.name }}\n", "nested": '{% include "block:signature" %}'}
    template = _compiled(
        "email", blocks=blocks, subject="件名",
        body='本文\n{% include "block:nested" %}',
        html='<p>本文</p>{% include "block:signature" %}',
    )  # fmt: skip
    content = template.render({"sender": {"name": "絆 & Co."}})
    assert content.text == "本文\n--\n絆 & Co.\n"
    assert content.html == "<p>本文</p>--\n絆 &amp; Co.\n"
    with pytest.raises(RenderError, match="unknown block 'nothing'"):
        _text('{% include "block:nothing" %}', {})
    with pytest.raises(RenderError) as in_block:
        _text('{% include "block:broken" %}', {}, blocks={"broken": "ok\n{{ nope }}"})
    assert "block 'broken' line 2" in str(in_block.value)


def test_syntax_errors_name_part_and_line():
    with pytest.raises(RenderError) as error:
        _compiled("email", subject="件名", body="一行目\n二行目\n{% if x %}\n本文")
    assert error.value.part == "body" and error.value.line == 4


def test_line_push_and_webhook_payloads():
    line = _compiled("line", messages=[
        {"type": "text", "text": "{{ last_name }}様、カートに商品が残っています"},
        {"type": "image", "originalContentUrl": "{{ cart.items[0].image_url }}",
         "previewImageUrl": "https://example.jp/p.jpg"},
    ])  # fmt: skip
    context = {"last_name": "佐藤", "cart": {"items": [{"image_url": "https://example.jp/a.jpg"}]},
               "last_order": {"total": 5500, "number": "A-1"}}  # fmt: skip
    assert render(line, context).payload == {"messages": [
        {"type": "text", "text": "佐藤様、カートに商品が残っています"},
        {"type": "image", "originalContentUrl": "https://example.jp/a.jpg",
         "previewImageUrl": "https://example.jp/p.jpg"},
    ]}  # fmt: skip
    push = render(_compiled("push", subject="{{ last_name }}様", body="お知らせ",
                            data={"order": "{{ last_order.number }}"}), context)  # fmt: skip
    assert (push.subject, push.text, push.payload) == (
        "佐藤様",
        "お知らせ",
        {"data": {"order": "A-1"}},
    )
    hook = _compiled("webhook", payload={"total": "{{ last_order.total }}",
                                         "label": "合計 {{ last_order.total | yen }}",
                                         "items": ["{{ last_name }}"]})  # fmt: skip
    assert render(hook, context).payload == {
        "total": 5500,
        "label": "合計 ¥5,500",
        "items": ["佐藤"],
    }
