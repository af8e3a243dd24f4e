"""A local webhook receiver: records every delivery and answers what it is told.

``answers[path]`` is a list of replies given in order (then 200); ``slow[path]``
makes that path wait so many seconds before answering (a timeout).
"""

from __future__ import annotations

import time

from tests.delivery.providers._base import ProviderServer, Received, Reply, json_reply

__all__ = ["WebhookServer"]


class WebhookServer(ProviderServer):
    """A shop's webhook endpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, list[Reply]] = {}
        self.slow: dict[str, float] = {}

    def handle(self, received: Received) -> Reply:
        """Answer the next scripted reply for the path, else 200."""
        delay = self.slow.get(received.path)
        if delay:
            time.sleep(delay)
        with self._lock:
            script = self.answers.get(received.path)
            if script:
                return script.pop(0)
        return json_reply(200, {"received": True})

    def deliveries(self, path: str) -> list[Received]:
        """The requests posted to ``path``."""
        return [r for r in self.requests if r.path == path]
