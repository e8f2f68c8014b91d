"""Alembic's environment for the lab store: migrate the connection labctl hands over."""

from __future__ import annotations

from alembic import context

from labctl.schema import lab_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=lab_metadata(),
    compare_type=True,
    # One transaction for the whole upgrade (PostgreSQL's DDL is transactional).
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
