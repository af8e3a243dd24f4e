"""The footer Japan's Specified Electronic Mail Act requires: marketing email only, complete."""

from __future__ import annotations

import pytest

from kizuna.channels.base import Content
from kizuna.content.footer import add_legal_footer, footer_problems, needs_legal_footer
from kizuna.delivery.settings import Sender
from kizuna.errors import InvalidInput

SENDER = Sender(
    name="株式会社絆 <Kizuna>",
    postal_address="〒150-0001 東京都渋谷区神宮前1-2-3",
    contact="support@kizuna.example.jp",
    unsubscribe_mailto="unsub@kizuna.example.jp",
)
LINKS = {
    "unsubscribe_url": "https://shop.example.jp/u/TOKEN",
    "preferences_url": "https://shop.example.jp/p/TOKEN",
    "unsubscribe_mailto": "mailto:unsub@kizuna.example.jp?subject=unsubscribe-TOKEN",
}
HTML = "<html><body><p>春の新作</p></BODY></html>"


def test_marketing_email_gets_the_footer_in_text_and_html():
    content = add_legal_footer(Content("春の新作のご案内", "件名", HTML), SENDER, LINKS)
    text = content.text
    assert text.startswith("春の新作のご案内\n")
    for line in (
        "配信元: 株式会社絆 <Kizuna>",
        "所在地: 〒150-0001 東京都渋谷区神宮前1-2-3",
        "お問い合わせ: support@kizuna.example.jp",
        "配信停止はこちら: https://shop.example.jp/u/TOKEN",
        "配信設定の変更: https://shop.example.jp/p/TOKEN",
        "メールでの配信停止: unsub@kizuna.example.jp（件名: unsubscribe-TOKEN）",
    ):
        assert line in text
    english = text.strip().splitlines()[-1]
    assert english.startswith("Sent by 株式会社絆 <Kizuna>, 〒150-0001")
    assert "Unsubscribe: https://shop.example.jp/u/TOKEN" in english
    html = content.html or ""
    assert html.startswith("<html><body><p>春の新作</p>") and html.endswith("</BODY></html>")
    footer = html[html.index('<div class="kizuna-legal-footer"') : html.index("</BODY>")]
    assert "株式会社絆 &lt;Kizuna&gt;" in footer  # escaped in HTML
    assert '<a href="https://shop.example.jp/u/TOKEN">' in footer
    assert '<a href="mailto:unsub@kizuna.example.jp?subject=unsubscribe-TOKEN">' in footer
    assert footer.index("配信元") < footer.index("Sent by")  # Japanese first, English below
    assert content.subject == "件名"


def test_html_without_body_gets_it_at_the_end_and_text_only_mail_only_text():
    bare = add_legal_footer(Content("本文", "件名", "<p>本文</p>"), SENDER, LINKS)
    assert (bare.html or "").startswith('<p>本文</p>\n<div class="kizuna-legal-footer"')
    text_only = add_legal_footer(Content("本文", "件名"), SENDER, {"unsubscribe_url": "https://u"})
    assert text_only.html is None and "配信停止はこちら: https://u" in text_only.text
    assert "配信設定の変更" not in text_only.text


def test_only_marketing_email_needs_it():
    assert needs_legal_footer("email", "marketing")
    assert not needs_legal_footer("email", "transactional")
    assert not needs_legal_footer("line", "marketing")


def test_an_incomplete_sender_or_a_missing_opt_out_link_stops_marketing_mail():
    assert footer_problems(SENDER) == []
    problems = footer_problems(Sender(name="絆", postal_address=" "))
    assert [p.field for p in problems] == ["sender.postal_address", "sender.contact"]
    with pytest.raises(InvalidInput) as error:
        add_legal_footer(Content("本文"), Sender(), LINKS)
    assert {p.field for p in error.value.problems} == {
        "sender.name", "sender.postal_address", "sender.contact"
    }  # fmt: skip
    with pytest.raises(InvalidInput, match="opt-out link"):
        add_legal_footer(Content("本文"), SENDER, {})
