"""The lab store's schema history (Alembic), run by :func:`labctl.labdb.upgrade`.

``env.py`` takes the connection it is given (no ``alembic.ini``, no URL in
a file); ``versions/`` holds one script per schema version. A new version:
change :func:`labctl.schema.lab_metadata`, then add a script whose upgrade
brings a store at the previous head to it - ``tests/labctl/test_schema.py``
fails until a store migrated to head equals the metadata, on PostgreSQL and
on SQLite.
"""
