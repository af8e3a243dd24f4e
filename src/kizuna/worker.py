"""Background work of a Kizuna process: for now, refreshing stored customer metrics.

``kizuna serve`` runs :class:`MetricsRefresher` in a daemon thread (embedded
deployment); ``kizuna worker`` runs it in the foreground (production, next to the
API processes; ``--once`` suits cron). A workspace is due when it has orders and its
metrics are older than ``KIZUNA_METRICS_REFRESH_HOURS`` (or were never computed).
A workspace whose refresh failed or wrote nothing is not retried until the next
interval, so a broken shop cannot keep the worker busy.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from kizuna.analytics.metrics import MetricsRefresh, refresh_customer_metrics
from kizuna.errors import KizunaError
from kizuna.store.database import Database
from kizuna.store.tables import customer_metrics, orders, workspaces
from kizuna.store.workspaces import Workspace, get_workspace

__all__ = ["MetricsRefresher", "start_background_refresh"]

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
