"""Alembic environment: runs migrations on the connection incidex hands over."""

from __future__ import annotations

from alembic import context

from store.db.models import SQLModel

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    """Migrate over the connection in config.attributes (incidex always supplies one)."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("incidex migrations run only through store.migrate.upgrade()")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
