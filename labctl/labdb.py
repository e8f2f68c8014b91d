"""Reaching the lab store: its URL, where the credentials come from, its schema version.

The lab store is one PostgreSQL database that every bench ships its runs to
(:mod:`labctl.shipper`) and that read commands and the lab-wide queue use
(:mod:`labctl.labstore`, :mod:`protocols.lab_queue`). See docs/lab-store.md.

Credentials come only from the environment or a password file, never from
a command line (where every user of the machine can read it with ``ps``):

* ``LABCTL_DATABASE_URL`` - the whole URL, password included;
* libpq's own variables (``PGPASSWORD``, ``PGUSER``, ``PGHOST``...);
* a password file (``PGPASSFILE``, else ``~/.pgpass``), which labctl refuses
  to let be read while its group or others can read it.

A URL given on the command line (``--to``, ``--data``, ``--lab``) must carry
no password; when it names the same server, database and user as
``LABCTL_DATABASE_URL``, that variable's password is used. A URL is only
ever shown masked (:func:`mask`), and a server's error message has any
password scrubbed from it before it is raised.

psycopg is imported by the functions that connect, SQLAlchemy and Alembic
only by :func:`upgrade`: ``import labctl.labdb`` costs nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputError, StorageError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "ENV_URL",
    "LAB_SCHEMA_HEAD",
    "LabStoreError",
    "LabUnavailable",
    "advisory_key",
    "check_passfile",
    "connect",
    "ensure_schema",
    "is_lab_url",
    "mask",
    "require_schema",
    "resolve_url",
    "schema_version",
    "upgrade",
]

#: The variable that names the lab store (password included, if it needs one).
ENV_URL = "LABCTL_DATABASE_URL"
#: The newest lab-store schema this labctl knows (the head of labctl/migrations/versions).
LAB_SCHEMA_HEAD = "0001"
#: How long a connection attempt may take: a bench never waits longer on the network.
CONNECT_TIMEOUT_S = 3
_SCHEMES = ("postgresql://", "postgres://")
_INSTALL = "the lab store needs its database client: pip install 'labctl[lab]'"


class LabStoreError(StorageError):
    """The lab store refused or failed a request (wrong schema, no permission, bad data)."""


class LabUnavailable(LabStoreError):
    """The lab store cannot be reached now (server down, network): try again later."""


def is_lab_url(text: object) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL."""
    return isinstance(text, str) and text.startswith(_SCHEMES)


def mask(url: str) -> str:
    """The URL with any password replaced by ``***`` - the only way a URL is ever shown."""
    masked = re.sub(r"^([a-z]+://[^:@/?#]*:)[^@/?#]*@", r"\1***@", url)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", masked, flags=re.IGNORECASE)


def _parts(url: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    try:
        return {key: str(value) for key, value in conninfo_to_dict(url).items()}
    except Exception as exc:  # psycopg.ProgrammingError: not a URL libpq reads
        raise InputError(f"not a PostgreSQL URL libpq can read: {mask(url)}", field="URL") from exc


def _same_target(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    keys = ("host", "hostaddr", "port", "dbname", "user")
    return all(a.get(key, "") == b.get(key, "") for key in keys)


def resolve_url(given: str | None, *, field: str) -> str:
    """The lab store's URL: ``given`` (from a command line: no password in it), else
    ``$LABCTL_DATABASE_URL``. Raises :class:`InputError` (one line) if neither."""
    _require_client()
    if given is None:
        from_env = os.environ.get(ENV_URL, "").strip()
        if not from_env:
            raise InputError(
                f"no lab store: give {field} postgresql://USER@HOST/DB or set {ENV_URL}",
                field=field,
            )
        if not is_lab_url(from_env):
            raise InputError(f"not a postgresql:// URL: {mask(from_env)}", field=ENV_URL)
        _parts(from_env)
        return from_env
    if not is_lab_url(given):
        raise InputError(f"not a postgresql:// URL: {mask(given)}", field=field)
    if _parts(given).get("password"):
        raise InputError(
            "a password on the command line can be read by every user of this machine (ps);"
            f" put it in {ENV_URL}, PGPASSWORD or a password file (chmod 600), not in the URL",
            field=field,
        )
    return given


def _require_client() -> None:
    import importlib.util

    if importlib.util.find_spec("psycopg") is None:
        raise InputError(_INSTALL, field="lab store")


def passfile() -> Path:
    """The password file libpq would read: ``$PGPASSFILE``, else ``~/.pgpass``."""
    return Path(os.environ.get("PGPASSFILE") or Path.home() / ".pgpass")


def check_passfile() -> None:
    """Refuse (one line) a password file that its group or others can read or write."""
    path = passfile()
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # none: nothing to read
    if stat.S_IMODE(mode) & 0o077:
        raise InputError(
            f"password file readable by group or others (mode {stat.S_IMODE(mode):04o});"
            f" labctl will not use it: chmod 600 {path}",
            source=str(path),
        )


def _password(url: str) -> str | None:
    """The password for ``url`` from ``$LABCTL_DATABASE_URL`` when it names the same target."""
    parts = _parts(url)
    if parts.get("password"):
        return None  # it has its own (it came from the environment)
    from_env = os.environ.get(ENV_URL, "").strip()
    if not is_lab_url(from_env):
        return None
    env_parts = _parts(from_env)
    if env_parts.get("password") and _same_target(parts, env_parts):
        return env_parts["password"]
    return None


def _scrub(message: str, url: str, password: str | None) -> str:
    """A server's error message with every password it might hold masked, cut to one line."""
    secrets = {p for p in (password, _parts(url).get("password"), _env_password()) if p}
    for secret in secrets:
        message = message.replace(secret, "***")
    line = " ".join(message.split())
    return line if len(line) <= 300 else f"{line[:300]}..."


def _env_password() -> str | None:
    from_env = os.environ.get(ENV_URL, "")
    if not is_lab_url(from_env):
        return None
    try:
        return _parts(from_env).get("password")
    except InputError:
        return None


def connect(url: str, *, autocommit: bool = False, purpose: str = "labctl") -> psycopg.Connection:
    """An open connection to the lab store at ``url``.

    Raises :class:`LabUnavailable` when the server cannot be reached (the
    message masked and scrubbed), :class:`InputError` for a password file
    others can read or a missing client library.
    """
    _require_client()
    import psycopg

    check_passfile()
    password = _password(url)
    extra: dict[str, Any] = {"password": password} if password else {}
    try:
        return psycopg.connect(
            url,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=purpose[:63],
            **extra,
        )
    except psycopg.Error as exc:
        raise LabUnavailable(
            f"cannot reach the lab store: {_scrub(str(exc), url, password)}", path=mask(url)
        ) from None


def failure(exc: BaseException, url: str) -> LabStoreError:
    """The labctl error for a psycopg one met while using the lab store at ``url``."""
    import psycopg

    message = _scrub(str(exc), url, _password(url))
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return LabUnavailable(f"lost the lab store: {message}", path=mask(url))
    return LabStoreError(message, path=mask(url))


def advisory_key(name: str) -> int:
    """A 64-bit advisory-lock key for ``name`` (pg_advisory_xact_lock takes a bigint)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def schema_version(connection: psycopg.Connection) -> str | None:
    """The lab store's Alembic revision; None for an empty database."""
    row = connection.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    found = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if found is None else str(found[0])


def require_schema(connection: psycopg.Connection, url: str) -> None:
    """Refuse a database that is not a lab store at this labctl's schema version."""
    version = schema_version(connection)
    if version == LAB_SCHEMA_HEAD:
        return
    if version is None:
        problem = "not a labctl lab store (no schema version): `labctl sync` makes one"
    elif version < LAB_SCHEMA_HEAD:
        problem = (
            f"lab store schema {version}, this labctl reads {LAB_SCHEMA_HEAD}:"
            " run `labctl sync` to upgrade it"
        )
    else:
        problem = (
            f"lab store schema {version} is newer than this labctl ({LAB_SCHEMA_HEAD}):"
            " upgrade labctl"
        )
    raise LabStoreError(problem, path=mask(url))


def ensure_schema(connection: psycopg.Connection, url: str) -> None:
    """Bring the lab store to this labctl's schema (creating it in an empty database).

    Several benches may start at once: the migration runs under an advisory
    lock, and the version is read again under it.
    """
    version = schema_version(connection)
    connection.commit()  # the caller's transactions start after this
    if version == LAB_SCHEMA_HEAD:
        return
    if version is not None and version > LAB_SCHEMA_HEAD:
        require_schema(connection, url)
    key = advisory_key("labctl lab-store schema")
    connection.execute("SELECT pg_advisory_lock(%s)", (key,))  # held by the session
    connection.commit()
    try:
        if schema_version(connection) != LAB_SCHEMA_HEAD:
            connection.commit()  # no snapshot held while the migration's connection works
            upgrade(url)
        require_schema(connection, url)
    finally:
        connection.rollback()
        connection.execute("SELECT pg_advisory_unlock(%s)", (key,))
        connection.commit()


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "labctl:migrations")
    config.attributes["connection"] = connection
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Run the lab store's migrations up to ``revision`` (Alembic, on a connection of ours)."""
    import sqlalchemy as sa
    from alembic import command

    engine = sa.create_engine(
        "postgresql+psycopg://",
        creator=lambda: connect(url, purpose="labctl migrate"),
        poolclass=sa.pool.NullPool,
    )
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection), revision)
    finally:
        engine.dispose()


def upgrade_connection(connection: Any, revision: str = "head") -> None:
    """Run the migrations on an SQLAlchemy connection (any dialect: tests use SQLite too)."""
    from alembic import command

    command.upgrade(_alembic_config(connection), revision)
