"""Turning a claimed message into what its channel sends: render, footer, tracking, headers.

The render context is the customer's personalization context (built for the
whole batch at once), the message's own params, the unsubscribe and preference
links, and the sender. A message whose template is missing or fails to render
gets its reason instead of content; the rest of the batch goes on.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from kizuna.channels.base import Content, Outgoing
from kizuna.content.context import build_contexts, message_context
from kizuna.content.footer import add_legal_footer, footer_problems
from kizuna.content.render import Renderer, open_renderer
from kizuna.delivery.settings import DeliverySettings
from kizuna.errors import KizunaError
from kizuna.measurement.tracking import instrument_html, unsubscribe_links
from kizuna.store.addresses import Address
from kizuna.store.messages import MessageRecord
from kizuna.store.scope import Scope
from kizuna.store.workspaces import Workspace

__all__ = ["Composer"]


class Composer:
    """Composes one workspace's batch of messages (inside one read transaction)."""

    def __init__(self, scope: Scope, workspace: Workspace, settings: DeliverySettings) -> None:
        self._scope = scope
        self._workspace = workspace
        self._settings = settings

    def compose(
        self, batch: Sequence[tuple[MessageRecord, Address | None]]
    ) -> dict[uuid.UUID, Outgoing | str]:
        """Each message's Outgoing, or the reason it cannot be composed."""
        renderer = open_renderer(self._scope, {m.template_key for m, _ in batch if m.template_key})
        contexts = build_contexts(
            self._scope, [m.customer_id for m, _ in batch], settings=self._settings
        )
        footer = [p.describe() for p in footer_problems(self._settings.sender)]
        done: dict[uuid.UUID, Outgoing | str] = {}
        for message, address in batch:
            try:
                done[message.message_id] = self._one(
                    message, address, renderer, contexts.get(message.customer_id, {}), footer
                )
            except KizunaError as exc:  # RenderError included: this message fails, not the batch
                done[message.message_id] = str(exc)
        return done

    def _one(
        self,
        message: MessageRecord,
        address: Address | None,
        renderer: Renderer,
        base: dict[str, Any],
        footer: Sequence[str],
    ) -> Outgoing | str:
        scope, settings = self._scope, self._settings
        template = renderer.template(message.template_key) if message.template_key else None
        if template is None and message.channel != "webhook":
            return "the message names no template"
        channel = template.spec.channel if template is not None else message.channel
        if channel != message.channel:
            return f"template {message.template_key!r} is for {channel}, not {message.channel}"
        links = unsubscribe_links(settings, scope.cipher, scope.workspace_id,
                                  message.message_id, message.customer_id)  # fmt: skip
        context = message_context(base, params=message.params, links=links.context())
        content = template.render(context) if template else Content(payload=dict(message.params))
        headers: dict[str, str] = {}
        if message.channel == "email":
            if message.purpose == "marketing":
                if footer:
                    return "the legal footer is incomplete: " + "; ".join(footer)
                content = add_legal_footer(content, settings.sender, links.context())
                headers.update(links.headers())
            if content.html and message.source_kind != "test":
                html = instrument_html(
                    content.html, message.message_id, scope.workspace_id, settings.public_url,
                    scope.cipher, settings.track_opens, settings.track_clicks, links.skip_urls(),
                )  # fmt: skip
                content = replace(content, html=html)
        url = str(message.params.get("url") or (template.url if template else "") or "")
        destination = address.value if address else url
        if not destination and message.channel != "webhook":  # webhooks may use the provider's
            return "no address"
        return Outgoing(
            message_id=message.message_id, idempotency_key=message.idempotency_key,
            workspace_id=scope.workspace_id, customer_id=message.customer_id,
            channel=message.channel, address=destination, purpose=message.purpose,
            content=content, headers=headers,
        )  # fmt: skip
