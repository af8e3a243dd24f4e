"""Delivery throughput: personalized emails/s through the whole send pipeline vs smtplib.

Usage: .venv/bin/python bench/delivery.py [--messages N] [--database-url URL] [--no-dkim]

A shop of N customers (email, name, consent) gets one marketing email each:
queued in the outbox, gated (consent, suppression, caps, quiet hours), rendered
from a Jinja2 template with the personalization context, given the legal footer,
tracked links and RFC 8058 headers, DKIM-signed (RSA 2048) and handed to a real
SMTP server (aiosmtpd, in its own process, loopback), then recorded (status, provider id,
a "Message Sent" event). The anchor is the limit of that server: a plain
``smtplib`` loop pushing the same number of pre-built messages over one
connection. A third run sends through the null channel (everything but SMTP and
DKIM) to show where the time goes. Each line prints its rate and the ratio to
the anchor; the aim is ≥ 1,000 messages/s for the full pipeline.
"""

from __future__ import annotations

import argparse
import multiprocessing
import smtplib
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP
from multiprocessing.connection import Connection
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.delivery.smtp_server

from tests.delivery.smtp_server import SmtpServer

from kizuna.bootstrap import open_database
from kizuna.config import load_settings
from kizuna.content.library import save_template
from kizuna.content.spec import parse_template_spec
from kizuna.delivery.pipeline import Pipeline
from kizuna.delivery.settings import (
    DeliverySettings,
    FrequencyCap,
    Sender,
    save_delivery_settings,
)
from kizuna.domain.records import ConsentRecord, CustomerTraits, Identifiers
from kizuna.store.consent import record_consents
from kizuna.store.customers import apply_traits
from kizuna.store.database import Database
from kizuna.store.identity import IdentityResolver
from kizuna.store.messages import SendIntent, enqueue
from kizuna.store.providers import configure_provider
from kizuna.store.scope import Scope
from kizuna.store.tables import customers
from kizuna.store.workspaces import create_workspace

LAST = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村"]
FIRST = ["花子", "太郎", "陽菜", "蓮", "結衣", "湊", "さくら", "大翔"]
SETTINGS = DeliverySettings(
    public_url="https://shop.example.jp/kz",
    sender=Sender(name="絆コスメ", postal_address="東京都渋谷区神南1-2-3",
                  contact="support@shop.example.jp"),
    frequency_caps=[FrequencyCap(channel="email", max_messages=10, days=7)],
)  # fmt: skip
TEMPLATE = {
    "key": "weekly", "channel": "email", "name": "週刊ニュース",
    "subject": "{{ last_name | default('お客') }}様、今週のおすすめです",
    "body": "{{ full_name | default('お客様') }}様\n\nいつも{{ sender.name }}をご利用いただき、"
            "ありがとうございます。\n{% for p in recommended[:3] %}・{{ p.name }}\n{% endfor %}"
            "\n今週のセール: https://shop.example.jp/sale\n",
    "html": "<html><body><p>{{ full_name | default('お客様') }}様</p>"
            "<p>いつも{{ sender.name }}をご利用いただき、ありがとうございます。</p>"
            "<ul>{% for p in recommended[:3] %}<li>{{ p.name }}</li>{% endfor %}</ul>"
            '<p><a href="https://shop.example.jp/sale">今週のセール</a> '
            '<a href="https://shop.example.jp/new">新商品</a></p></body></html>',
}  # fmt: skip


def _shop(db: Database, customers: int) -> Scope:
    """A workspace with ``customers`` opted-in email customers; returns a scope factory seed."""
    now = db.clock.now()
    with db.write() as conn:
        ws = create_workspace(conn, "bench-delivery", now=now)
        scope = Scope(conn, db.cipher, ws.workspace_id, now)
        save_delivery_settings(conn, ws.workspace_id, SETTINGS)
        resolver = IdentityResolver(scope)
        consents = []
        for i in range(customers):
            address = f"customer{i}@example.jp"
            cid = resolver.resolve(Identifiers(email=address), now)
            resolver.flush()
            apply_traits(scope, cid, CustomerTraits(
                email=address, last_name=LAST[i % 8], first_name=FIRST[i % 8]))  # fmt: skip
            consents.append(ConsentRecord(customer={"email": address}, channel="email",
                                          status="opted_in", occurred_at=now - timedelta(days=9),
                                          method="checkout checkbox"))  # fmt: skip
        record_consents(scope, resolver, consents)
        save_template(scope, parse_template_spec(TEMPLATE), "bench")
    return scope


def _customer_ids(db: Database, workspace_id: uuid.UUID) -> list[uuid.UUID]:
    with db.read() as conn:
        return list(conn.execute(sa.select(customers.c.customer_id).where(
            customers.c.workspace_id == workspace_id)).scalars())  # fmt: skip


def _queue(db: Database, workspace_id: uuid.UUID, ids: list[uuid.UUID], run: str) -> None:
    with db.write() as conn:
        scope = Scope(conn, db.cipher, workspace_id, db.clock.now())
        intents = [SendIntent(cid, "email", "weekly", f"{run}:{cid}", source_kind="campaign",
                              source_id=run) for cid in ids]  # fmt: skip
        enqueue(scope, intents)


def _timed_drain(db: Database) -> tuple[float, dict[str, int]]:
    pipeline = Pipeline(db)
    try:
        start = time.perf_counter()
        report = pipeline.drain_all()
        return time.perf_counter() - start, dict(report.outcomes)
    finally:
        pipeline.close()


def _dkim_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()  # fmt: skip


def _anchor(port: int, count: int) -> float:
    """smtplib pushing ``count`` pre-built messages over one connection (building not timed)."""
    built = []
    for i in range(count):
        m = EmailMessage()
        m["From"], m["To"] = "news@shop.example.jp", f"customer{i}@example.jp"
        m["Subject"] = f"{LAST[i % 8]}様、今週のおすすめです"
        m.set_content("いつもご利用いただき、ありがとうございます。\n" * 8, cte="base64")
        m.add_alternative("<p>いつもご利用いただき、ありがとうございます。</p>\n" * 8,
                          subtype="html", cte="base64")  # fmt: skip
        built.append((m["To"], m.as_bytes(policy=SMTP)))
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as client:
        for to, data in built:
            client.sendmail("news@shop.example.jp", [to], data)
    return time.perf_counter() - start


class _ServerProcess:
    """The SMTP server in its own process, so it does not share the pipeline's GIL."""

    def __init__(self) -> None:
        self._conn, child = multiprocessing.Pipe()
        self._process = multiprocessing.Process(target=_serve, args=(child,), daemon=True)

    def __enter__(self) -> _ServerProcess:
        self._process.start()
        self.port: int = self._conn.recv()
        return self

    def accepted(self) -> int:
        """How many messages the server has accepted so far."""
        self._conn.send("accepted")
        count: int = self._conn.recv()
        return count

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._process.join(10)


def _serve(conn: Connection) -> None:
    with SmtpServer(keep=False) as server:
        conn.send(server.port)
        while (command := conn.recv()) != "stop":
            conn.send(server.accepted if command == "accepted" else None)


def main() -> None:
    """Run the three measurements side by side and print rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--no-dkim", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {"KIZUNA_HOME": home}
        if args.database_url:
            env["KIZUNA_DATABASE_URL"] = args.database_url
        db = open_database(load_settings(env))
        start = time.perf_counter()
        ws = _shop(db, args.messages).workspace_id
        ids = _customer_ids(db, ws)
        print(f"shop: {len(ids):,} customers on {db.dialect} "
              f"(built in {time.perf_counter() - start:.1f} s, not timed)")  # fmt: skip
        with _ServerProcess() as server:
            smtp = {"host": "127.0.0.1", "port": server.port, "starttls": False,
                    "from_address": "news@shop.example.jp", "from_name": "絆コスメ",
                    "message_id_domain": "shop.example.jp"}  # fmt: skip
            secrets = {}
            if not args.no_dkim:
                smtp.update(dkim_domain="shop.example.jp", dkim_selector="kz1")
                secrets["dkim_private_key"] = _dkim_key()
            with db.write() as conn:
                scope = Scope(conn, db.cipher, ws, db.clock.now())
                configure_provider(scope, "email", "smtp", smtp, secrets)
            _queue(db, ws, ids, "smtp")
            smtp_seconds, smtp_outcomes = _timed_drain(db)
            assert server.accepted() == len(ids), (server.accepted(), smtp_outcomes)
            anchor_seconds = _anchor(server.port, len(ids))
        with db.write() as conn:
            configure_provider(Scope(conn, db.cipher, ws, db.clock.now()), "email", "null", {})
        _queue(db, ws, ids, "null")
        null_seconds, null_outcomes = _timed_drain(db)
        db.dispose()
    n = len(ids)
    anchor_rate = n / anchor_seconds
    dkim = "no DKIM" if args.no_dkim else "DKIM rsa-sha256"
    print(f"smtplib loop, pre-built (anchor): {anchor_rate:8,.0f} messages/s")
    print(
        f"pipeline → SMTP ({dkim}):   {n / smtp_seconds:8,.0f} messages/s  "
        f"ratio {n / smtp_seconds / anchor_rate:.2f}  aim ≥ 1,000/s  {smtp_outcomes}"
    )
    print(f"pipeline → null channel:          {n / null_seconds:8,.0f} messages/s  "
          f"ratio {n / null_seconds / anchor_rate:.2f}  {null_outcomes}")  # fmt: skip


if __name__ == "__main__":
    main()
