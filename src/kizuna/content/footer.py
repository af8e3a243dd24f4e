"""The footer Japan's Specified Electronic Mail Act (特定電子メール法) requires on marketing email.

Article 4 of the Act and its ordinance require, in every advertising email: the
sender's name (送信者の氏名又は名称), a notice that the recipient may refuse further
mail with the address or URL to do so (受信拒否の通知先), the sender's postal
address (住所), and a telephone number, email address or URL for complaints and
enquiries (苦情・問合せ先). Transactional mail (order confirmations, shipping
notices) is not advertising and is exempt.

:func:`footer_problems` says what is missing from a workspace's sender, so the
pipeline can refuse marketing sends until it is complete; :func:`add_legal_footer`
appends the footer, Japanese first with an English line below, to the text part
and (before ``</body>``) to the HTML part. Add it before links are rewritten for
tracking: its unsubscribe and preference links must stay as they are.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

from markupsafe import Markup, escape

from kizuna.channels.base import Content
from kizuna.delivery.settings import Sender
from kizuna.errors import InvalidInput, Problem

__all__ = ["add_legal_footer", "footer_problems", "needs_legal_footer"]

_REQUIRED = (
    ("name", "the sender's name (送信者の氏名又は名称)"),
    ("postal_address", "the sender's postal address (住所)"),
    ("contact", "a contact for enquiries: email, telephone or URL (苦情・問合せ先)"),
)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_RULE = "―" * 24


def needs_legal_footer(channel: str, purpose: str) -> bool:
    """Whether a message carries the footer: marketing email only."""
    return channel == "email" and purpose == "marketing"


def footer_problems(sender: Sender) -> list[Problem]:
    """What the sender settings lack for marketing email; empty when it may go out."""
    return [
        Problem("sender_incomplete", f"marketing email must show {label}", f"sender.{field}")
        for field, label in _REQUIRED
        if not getattr(sender, field).strip()
    ]


def _mailto(link: str) -> tuple[str, str]:
    """(address, subject) of a ``mailto:`` link."""
    parts = urlsplit(link)
    subject = parse_qs(parts.query).get("subject", [""])[0]
    return parts.path, subject


def _text(sender: Sender, links: Mapping[str, str]) -> str:
    lines = ["", _RULE, f"配信元: {sender.name}", f"所在地: {sender.postal_address}",
             f"お問い合わせ: {sender.contact}",
             f"配信停止はこちら: {links['unsubscribe_url']}"]  # fmt: skip
    if links.get("preferences_url"):
        lines.append(f"配信設定の変更: {links['preferences_url']}")
    if links.get("unsubscribe_mailto"):
        address, subject = _mailto(links["unsubscribe_mailto"])
        lines.append(f"メールでの配信停止: {address}" + (f"（件名: {subject}）" if subject else ""))
    lines.append(f"Sent by {sender.name}, {sender.postal_address}. Contact: {sender.contact}. "
                 f"Unsubscribe: {links['unsubscribe_url']}")  # fmt: skip
    return "\n".join(lines) + "\n"


# Placeholders for the per-message parts; the rest of the HTML footer depends only on the
# sender and is built once (formatting it per message was most of a send's render time).
_SLOTS = {"unsubscribe_url": "\x00u\x00", "preferences_url": "\x00p\x00",
          "unsubscribe_mailto": "\x00m\x00", "mailto_address": "\x00a\x00"}  # fmt: skip


def _html(sender: Sender, links: Mapping[str, str]) -> Markup:
    skeleton = _html_skeleton(
        sender, bool(links.get("preferences_url")), bool(links.get("unsubscribe_mailto"))
    )
    values = dict(links)
    if links.get("unsubscribe_mailto"):
        values["mailto_address"] = _mailto(links["unsubscribe_mailto"])[0]
    for name, slot in _SLOTS.items():
        if slot in skeleton:
            skeleton = skeleton.replace(slot, str(escape(values[name])))
    return Markup(skeleton)  # noqa: S704 - every part was escaped above


@functools.lru_cache(maxsize=64)
def _html_skeleton(sender: Sender, preferences: bool, mailto: bool) -> str:
    def link(url: str, label: str) -> Markup:
        """An escaped ``<a>``."""
        return Markup('<a href="{}">{}</a>').format(url, label)

    rows = [Markup("配信元: {}").format(sender.name),
            Markup("所在地: {}").format(sender.postal_address),
            Markup("お問い合わせ: {}").format(sender.contact),
            Markup("配信停止: ") + link(_SLOTS["unsubscribe_url"], "配信停止の手続き")]  # fmt: skip
    if preferences:
        rows.append(Markup("配信設定の変更: ") + link(_SLOTS["preferences_url"], "配信設定"))
    if mailto:
        rows.append(
            Markup("メールでの配信停止: ")
            + link(_SLOTS["unsubscribe_mailto"], _SLOTS["mailto_address"])
        )
    rows.append(
        Markup("Sent by {}, {}. Contact: {}. ").format(
            sender.name, sender.postal_address, sender.contact
        )
        + link(_SLOTS["unsubscribe_url"], "Unsubscribe")
    )
    body = Markup("<br>\n").join(rows)
    style = "margin-top:24px;padding-top:12px;border-top:1px solid #ccc;font-size:12px;color:#555"
    return str(
        Markup('\n<div class="kizuna-legal-footer" style="{}">\n{}\n</div>\n').format(style, body)
    )


def add_legal_footer(content: Content, sender: Sender, links: Mapping[str, str]) -> Content:
    """``content`` with the legal footer on its text and HTML parts.

    ``links`` needs ``unsubscribe_url`` (and may have ``preferences_url`` and
    ``unsubscribe_mailto``); raises ``InvalidInput`` without it or when
    :func:`footer_problems` finds the sender incomplete.
    """
    problems = footer_problems(sender)
    if not links.get("unsubscribe_url"):
        problems.append(Problem("no_unsubscribe_link", "marketing email needs an opt-out link",
                                "links.unsubscribe_url"))  # fmt: skip
    if problems:
        raise InvalidInput(problems)
    text = content.text
    if text and not text.endswith("\n"):
        text += "\n"
    html = content.html
    if html is not None:
        footer = str(_html(sender, links))
        ends = list(_BODY_END.finditer(html))
        at = ends[-1].start() if ends else len(html)  # before the last </body>, else at the end
        html = html[:at] + footer + html[at:]
    return dataclasses.replace(content, text=text + _text(sender, links), html=html)
