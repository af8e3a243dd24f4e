"""Alembic environment: runs on the connection Kizuna hands it (see store.migrate)."""

from alembic import context

from kizuna.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - Kizuna always passes its own connection
    raise RuntimeError("run migrations through kizuna.store.migrate.upgrade()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
