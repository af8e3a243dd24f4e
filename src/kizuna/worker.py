"""Background work of a Kizuna process: stored customer metrics and segment membership.

``kizuna serve`` runs :class:`MetricsRefresher` in a daemon thread (embedded
deployment); ``kizuna worker`` runs it in the foreground (production, next to the
API processes; ``--once`` suits cron). A workspace is due when it has orders and its
metrics are older than ``KIZUNA_METRICS_REFRESH_HOURS`` (or were never computed).
A workspace whose refresh failed or wrote nothing is not retried until the next
interval, so a broken shop cannot keep the worker busy.

:class:`SegmentRefresher` keeps segment membership current: one loop drains the
change queue ingest writes (every ``drain_seconds``, at once again while a full batch
came back), another runs the due full refreshes (new or edited segments, those reading
the clock every ``KIZUNA_SEGMENT_REFRESH_MINUTES``, those reading metrics after a
metrics refresh). ``kizuna serve`` runs both in daemon threads, ``kizuna worker``
beside the metrics loop; on PostgreSQL any number of workers share the queue.

:func:`start_outbox_drain` runs the send pipeline: it drains due messages every
``poll_seconds`` (at once again while full batches come back); workers on
PostgreSQL share the outbox through ``SKIP LOCKED``.

:func:`start_campaign_sends` freezes and sends the approved campaigns whose time
has come (:func:`kizuna.campaigns.send.send_due_campaigns`) every ``poll_seconds``;
:func:`start_attribution` credits new and changed orders to the messages before them
and fills in campaign recipients' outcomes (:mod:`kizuna.measurement.attribution`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from kizuna.analytics.metrics import MetricsRefresh, refresh_customer_metrics
from kizuna.errors import KizunaError
from kizuna.segments.membership import DRAIN_LIMIT, SegmentRefresh, drain_queue, refresh_due
from kizuna.store.database import Database
from kizuna.store.tables import customer_metrics, orders, workspaces
from kizuna.store.workspaces import Workspace, get_workspace

__all__ = [
    "MetricsRefresher",
    "SegmentRefresher",
    "start_background_refresh",
    "start_campaign_sends",
    "start_outbox_drain",
    "start_segment_refresh",
]

log = logging.getLogger(__name__)


class MetricsRefresher:
    """Finds workspaces whose stored metrics are stale and refreshes them."""

    def __init__(self, db: Database, interval: timedelta) -> None:
        self._db = db
        self._interval = interval
        self._attempted: dict[str, datetime] = {}

    def due(self) -> list[Workspace]:
        """Workspaces with orders whose metrics are older than the interval."""
        now = self._db.clock.now()
        newest = (
            sa.select(sa.func.max(customer_metrics.c.computed_at))
            .where(customer_metrics.c.workspace_id == workspaces.c.workspace_id)
            .scalar_subquery()
        )
        has_orders = sa.exists().where(orders.c.workspace_id == workspaces.c.workspace_id)
        query = sa.select(workspaces.c.slug, newest.label("newest")).where(has_orders)
        with self._db.read() as conn:
            rows = conn.execute(query).all()
            stale = []
            for slug, computed in rows:
                tried = self._attempted.get(slug)
                if (computed is None or now - _aware(computed) >= self._interval) and (
                    tried is None or now - tried >= self._interval
                ):
                    stale.append(get_workspace(conn, slug))
        return stale

    def run_once(self) -> dict[str, MetricsRefresh | str]:
        """Refresh every due workspace; returns what each refresh wrote, or its error."""
        done: dict[str, MetricsRefresh | str] = {}
        for workspace in self.due():
            self._attempted[workspace.slug] = self._db.clock.now()
            try:
                done[workspace.slug] = refresh_customer_metrics(self._db, workspace)
            except KizunaError as exc:  # one shop's bad data must not stop the others
                log.warning("metrics refresh of %s failed: %s", workspace.slug, exc)
                done[workspace.slug] = str(exc)
        return done

    def run_until(self, stop: threading.Event, poll_seconds: float = 60.0) -> None:
        """Refresh due workspaces every ``poll_seconds`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:  # the loop outlives a database hiccup; the log says what
                log.exception("metrics refresh loop failed; retrying")
            stop.wait(poll_seconds)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def start_background_refresh(db: Database, hours: float) -> threading.Event | None:
    """Start the refresh loop in a daemon thread (none when ``hours`` is 0); set to stop."""
    if hours <= 0:
        return None
    stop = threading.Event()
    refresher = MetricsRefresher(db, timedelta(hours=hours))
    thread = threading.Thread(target=refresher.run_until, args=(stop,), daemon=True,
                              name="kizuna-metrics")  # fmt: skip
    thread.start()
    return stop


class SegmentRefresher:
    """Drains the segment change queue and runs the due full refreshes of segments."""

    def __init__(
        self,
        db: Database,
        refresh_every: timedelta | None,
        *,
        drain_seconds: float = 0.05,
        check_seconds: float = 5.0,
        drain_limit: int = DRAIN_LIMIT,
    ) -> None:
        self._db = db
        self._every = refresh_every
        self._drain_seconds = drain_seconds
        self._check_seconds = check_seconds
        self._limit = drain_limit

    def drain(self) -> int:
        """Drain the queue until it is empty; returns how many changes were processed."""
        total = 0
        while True:
            done = drain_queue(self._db, self._limit)
            total += done
            if done < self._limit:
                return total

    def refresh(self) -> list[SegmentRefresh]:
        """Run the full refreshes that are due now."""
        return refresh_due(self._db, self._every)

    def run_once(self) -> tuple[int, list[SegmentRefresh]]:
        """Drain the queue, then refresh what is due (for ``kizuna worker --once``)."""
        drained = self.drain()
        return drained, self.refresh()

    def drain_until(self, stop: threading.Event) -> None:
        """Drain every ``drain_seconds`` until ``stop`` is set."""
        while not stop.is_set():
            busy = False
            try:
                busy = drain_queue(self._db, self._limit) == self._limit
            except Exception:  # the loop outlives a database hiccup; the log says what
                log.exception("segment queue drain failed; retrying")
            if not busy:
                stop.wait(self._drain_seconds)

    def refresh_until(self, stop: threading.Event) -> None:
        """Run due full refreshes every ``check_seconds`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                for done in self.refresh():
                    log.info("segment %s/%s refreshed: +%d -%d in %.2f s", done.workspace,
                             done.key, done.entered, done.exited, done.seconds)  # fmt: skip
            except Exception:  # one failing refresh must not stop the schedule
                log.exception("segment refresh failed; retrying")
            stop.wait(self._check_seconds)


def start_segment_refresh(
    db: Database, minutes: float, drain_seconds: float = 0.05
) -> threading.Event:
    """Start the queue drain and the scheduled refresh in daemon threads; set to stop.

    ``minutes`` is the interval of segments that read the clock (0: never by time).
    """
    stop = threading.Event()
    every = timedelta(minutes=minutes) if minutes > 0 else None
    refresher = SegmentRefresher(db, every, drain_seconds=drain_seconds)
    for name, loop in (("drain", refresher.drain_until), ("refresh", refresher.refresh_until)):
        thread = threading.Thread(target=loop, args=(stop,), daemon=True,
                                  name=f"kizuna-segments-{name}")  # fmt: skip
        thread.start()
    return stop


def start_outbox_drain(db: Database, poll_seconds: float = 0.5) -> threading.Event:
    """Drain the outbox in a daemon thread until the returned event is set."""
    from kizuna.delivery.pipeline import Pipeline

    stop = threading.Event()
    pipeline = Pipeline(db)

    def loop() -> None:
        try:
            while not stop.is_set():
                busy = False
                try:
                    report = pipeline.drain()
                    busy = report.claimed >= pipeline.batch_size
                except Exception:  # the loop outlives a database or provider hiccup
                    log.exception("outbox drain failed; retrying")
                if not busy:
                    stop.wait(poll_seconds)
        finally:
            pipeline.close()

    threading.Thread(target=loop, daemon=True, name="kizuna-outbox").start()
    return stop


def _repeat(job: Callable[[], object], poll_seconds: float, name: str) -> threading.Event:
    """Run ``job`` in a daemon thread every ``poll_seconds`` until the returned event is set."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                job()
            except Exception:  # the loop outlives a database hiccup; the log says what
                log.exception("%s failed; retrying", name)
            stop.wait(poll_seconds)

    threading.Thread(target=loop, daemon=True, name=f"kizuna-{name}").start()
    return stop


def start_campaign_sends(db: Database, poll_seconds: float = 5.0) -> threading.Event:
    """Send due campaigns in a daemon thread every ``poll_seconds`` until the event is set."""
    from kizuna.campaigns.send import send_due_campaigns

    return _repeat(lambda: send_due_campaigns(db), poll_seconds, "campaigns")


def start_attribution(db: Database, poll_seconds: float = 30.0) -> threading.Event:
    """Credit new orders to messages and fill campaign outcomes every ``poll_seconds``."""
    from kizuna.measurement.attribution import attribute

    return _repeat(lambda: attribute(db), poll_seconds, "attribution")
