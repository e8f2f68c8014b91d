"""Alembic revision scripts of the lab store, oldest first."""
