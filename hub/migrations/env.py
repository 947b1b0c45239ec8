"""Alembic environment: migrations always run on a connection the hub hands over."""
from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the hub runs these migrations
    raise RuntimeError("hub migrations run through `gatehouse hub migrate`, not the alembic command")

context.configure(connection=connection, render_as_batch=True, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
