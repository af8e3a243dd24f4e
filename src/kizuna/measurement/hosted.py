"""The hosted pages (unsubscribe, preference centre, bad links) in Japanese and English.

Templates live in ``pages/*.html`` and render with Jinja2 with autoescaping on
and undefined names as errors. The language comes from ``?lang=``, then the
form, then ``Accept-Language``, and is Japanese when nothing says otherwise.
The wording a person saw is also what consent evidence records, so every
sentence is kept here, once per language.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

__all__ = [
    "CHANNEL_IN_SENTENCE",
    "CHANNEL_NAMES",
    "LANGUAGES",
    "TEXTS",
    "negotiate_language",
    "render_page",
]

LANGUAGES = ("ja", "en")
_DEFAULT = "ja"

CHANNEL_NAMES: dict[str, dict[str, str]] = {
    "ja": {"email": "メール", "line": "LINE", "sms": "SMS（ショートメッセージ）",
           "push": "アプリのプッシュ通知"},
    "en": {"email": "Email", "line": "LINE", "sms": "Text messages (SMS)",
           "push": "App notifications"},
}  # fmt: skip
# Inside a sentence ("Stop email messages from …") English wants lower case where it can.
CHANNEL_IN_SENTENCE: dict[str, dict[str, str]] = {
    "ja": CHANNEL_NAMES["ja"],
    "en": {"email": "email", "line": "LINE", "sms": "text", "push": "app notification"},
}

TEXTS: dict[str, dict[str, str]] = {
    "ja": {
        "unsubscribe_title": "配信停止",
        "unsubscribe_lead": "{sender}からの{channel}によるお知らせの配信を停止します。",
        "unsubscribe_address": "対象の宛先",
        "unsubscribe_button": "配信を停止する",
        "unsubscribe_done": (
            "配信を停止しました。今後、{sender}から{channel}でお知らせをお送りすることはありません。"
        ),
        "unsubscribe_already": "この宛先への配信はすでに停止されています。",
        "unsubscribe_test": "これはテスト配信です。配信設定は変更されていません。",
        "unsubscribe_more": "お知らせの種類ごとに選ぶには、配信設定ページをご利用ください。",
        "preferences_link": "配信設定を変更する",
        "preferences_title": "配信設定",
        "preferences_lead": "{sender}からのお知らせの受け取り方を選べます。",
        "preferences_channels": "受け取る方法",
        "preferences_topics": "受け取るお知らせの種類",
        "preferences_save": "設定を保存する",
        "preferences_saved": "設定を保存しました。",
        "preferences_none": "選べる受け取り方法がありません。",
        "consent_wording": "チェックを入れた方法で{sender}からのお知らせを受け取ります。",
        "error_title": "このリンクは使えません",
        "error_invalid": (
            "リンクが正しくないか、途中で切れています。メールのリンクをもう一度お試しください。"
        ),
        "error_expired": "このリンクは有効期限が切れています。ページを開き直してください。",
        "error_missing": "お探しのページは見つかりませんでした。",
        "language": "言語",
        "sender_contact": "お問い合わせ",
    },
    "en": {
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_lead": "Stop {channel} messages from {sender}.",
        "unsubscribe_address": "Address",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribe_done": (
            "You are unsubscribed. {sender} will not send you {channel} messages any more."
        ),
        "unsubscribe_already": "This address was already unsubscribed.",
        "unsubscribe_test": "This was a test message. Nothing was changed.",
        "unsubscribe_more": "To choose by kind of message, use the preference centre.",
        "preferences_link": "Change your preferences",
        "preferences_title": "Your preferences",
        "preferences_lead": "Choose how {sender} keeps in touch.",
        "preferences_channels": "How to reach you",
        "preferences_topics": "What to hear about",
        "preferences_save": "Save preferences",
        "preferences_saved": "Your preferences are saved.",
        "preferences_none": "There is no way to reach you that you could choose.",
        "consent_wording": "I want to hear from {sender} through the ways I ticked.",
        "error_title": "This link does not work",
        "error_invalid": (
            "The link is wrong or was cut short. Please try the link in the message again."
        ),
        "error_expired": "This link has expired. Please open the page again.",
        "error_missing": "The page you asked for does not exist.",
        "language": "Language",
        "sender_contact": "Contact",
    },
}  # fmt: skip


def _ranked(accept_language: str) -> list[str]:
    """Primary language tags by preference (q descending, then order); q=0 means "not this"."""
    ranked = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if quality > 0:
            ranked.append((-quality, index, tag.strip().lower().split("-")[0]))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate_language(*choices: str | None, accept_language: str | None = None) -> str:
    """The first supported explicit choice, else the best Accept-Language match, else ``ja``."""
    for choice in choices:
        if choice and choice.lower() in LANGUAGES:
            return choice.lower()
    for tag in _ranked(accept_language or ""):
        if tag in LANGUAGES:
            return tag
    return _DEFAULT


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(Path(__file__).with_name("pages")),
        autoescape=True,  # IMPORTANT: every value a page shows is escaped
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # pages ship with the package; no stat() per request
    )


def render_page(template: str, lang: str, **context: Any) -> str:
    """Render ``pages/<template>`` in ``lang`` with the texts and channel names of that language."""
    page = _environment().get_template(template)
    return page.render(
        lang=lang,
        t=TEXTS[lang],
        channel_names=CHANNEL_NAMES[lang],
        channel_in_sentence=CHANNEL_IN_SENTENCE[lang],
        **context,
    )
