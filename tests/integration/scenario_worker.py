"""A scenario worker process for the crash tests: engine ticks and outbox drains, forever.

Run as ``python -m tests.integration.scenario_worker BATCH`` with the store in the
environment (``KIZUNA_HOME``, ``KIZUNA_DATABASE_URL``, ``KIZUNA_SECRET_KEY``); the
tests kill it with SIGKILL at random moments.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta

from kizuna.bootstrap import open_database
from kizuna.config import load_settings
from kizuna.delivery.pipeline import Pipeline
from kizuna.scenarios.engine import ScenarioEngine


def main() -> None:
    """Tick and drain in small batches, so a kill lands between and inside transactions."""
    batch = int(sys.argv[1])
    db = open_database(load_settings(), migrate=False)
    engine = ScenarioEngine(db, batch_size=batch)
    # A short lease: messages a killed worker held are taken again within a second.
    pipeline = Pipeline(db, batch_size=batch, lease=timedelta(seconds=1))
    print("ready", flush=True)
    while True:
        busy = engine.tick().busy
        busy = pipeline.drain().claimed > 0 or busy
        if not busy:
            time.sleep(0.01)


if __name__ == "__main__":
    main()
