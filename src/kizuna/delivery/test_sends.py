"""Test sends: a template rendered for a real (sample) customer, delivered to the seed list.

They go through the same pipeline as real sends — render, footer, DKIM, the
provider — but only to staff addresses, skip consent and caps (the recipients are
staff), and their tracking and unsubscribe links change nothing.
"""

from __future__ import annotations

import uuid

from kizuna.errors import NotFound
from kizuna.store.messages import SendIntent, enqueue
from kizuna.store.scope import Scope
from kizuna.store.seed_addresses import list_seed_addresses
from kizuna.store.templates import get_template

__all__ = ["queue_test_send"]


def queue_test_send(scope: Scope, template_key: str, customer_id: uuid.UUID) -> list[uuid.UUID]:
    """Queue one test message per seed address of the template's channel; returns their ids."""
    template = get_template(scope, template_key)
    seeds = list_seed_addresses(scope, template.channel)
    if not seeds:
        raise NotFound(f"no seed addresses for {template.channel}: add one first "
                       f"(kizuna delivery seed {template.channel} ADDRESS)")  # fmt: skip
    stamp = scope.now.isoformat()
    intents = [
        SendIntent(
            customer_id, template.channel, template_key,
            f"test:{template_key}:v{template.version}:{seed.hash.hex()[:16]}:{stamp}",
            purpose="marketing", source_kind="test", source_id=template_key,
            params={"seed_address_hash": seed.hash.hex()},
        )
        for seed in seeds
    ]  # fmt: skip
    return enqueue(scope, intents)
